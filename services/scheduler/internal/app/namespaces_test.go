package app

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/pgtest"
)

// The leader's SchedulerService with namespaces: every mutation acts in the namespace its
// request names (empty: default), a resource of another namespace is NOT_FOUND, an unknown
// namespace is NOT_FOUND naming it, and a namespace is deleted only when empty.
func TestSchedulerServiceNamespaces(t *testing.T) {
	etcd := etcdtest.Start(t)
	a := startApp(t, testConfig(t, pgtest.NewDatabase(t), etcd.Endpoints(), "s1"))
	waitFor(t, 15*time.Second, "leadership", a.Leading)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sched := cairnv1.NewSchedulerServiceClient(dial(t, a.GRPCAddr()))
	var resp any
	var err error
	retryUnavailable := func(call func() error) {
		t.Helper()
		waitFor(t, 10*time.Second, "the engine to accept calls", func() bool {
			err = call()
			return codeOf(err) != codes.Unavailable
		})
	}

	// Namespaces are created once, with a valid name.
	retryUnavailable(func() error {
		resp, err = sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: "team-a", Description: "Team A"})
		return err
	})
	if err != nil || resp.(*cairnv1.CreateNamespaceResponse).GetNamespace().GetName() != "team-a" {
		t.Fatalf("create team-a: %v %v", resp, err)
	}
	_, err = sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: "team-a"})
	wantCode(t, err, codes.AlreadyExists, "team-a")
	_, err = sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: "Team A"})
	wantCode(t, err, codes.InvalidArgument, "namespace")
	_, err = sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{})
	wantCode(t, err, codes.InvalidArgument, "namespace")

	// One workflow name in two namespaces: two workflows.
	for _, ns := range []string{"", "team-a"} {
		aw, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: ns, Yaml: workflowYAML})
		want := ns
		if want == "" {
			want = "default"
		}
		if err != nil || !aw.GetCreated() || aw.GetWorkflow().GetVersion() != 1 || aw.GetWorkflow().GetNamespace() != want {
			t.Fatalf("apply in %q: %v %v; want a new version 1 in %s", ns, aw, err, want)
		}
	}
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: "nope", Yaml: workflowYAML})
	wantCode(t, err, codes.NotFound, "namespace nope")
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: "-bad", Yaml: workflowYAML})
	wantCode(t, err, codes.InvalidArgument, "namespace")

	// Runs, with idempotency keys per namespace.
	start := func(ns, key string) *cairnv1.StartRunResponse {
		t.Helper()
		r, err := sched.StartRun(ctx, &cairnv1.StartRunRequest{Namespace: ns, Workflow: "e2e", IdempotencyKey: key})
		if err != nil {
			t.Fatalf("start in %q: %v", ns, err)
		}
		return r
	}
	teamRun, defRun := start("team-a", "k1"), start("", "k1")
	if teamRun.GetExisting() || defRun.GetExisting() || teamRun.GetRun().GetRunId() == defRun.GetRun().GetRunId() ||
		teamRun.GetRun().GetNamespace() != "team-a" || defRun.GetRun().GetNamespace() != "default" {
		t.Fatalf("one key in two namespaces: %v / %v; want two new runs, one in each", teamRun, defRun)
	}
	if again := start("team-a", "k1"); !again.GetExisting() || again.GetRun().GetRunId() != teamRun.GetRun().GetRunId() {
		t.Fatalf("the key again in team-a: %v; want the existing run", again)
	}
	_, err = sched.StartRun(ctx, &cairnv1.StartRunRequest{Namespace: "nope", Workflow: "e2e"})
	wantCode(t, err, codes.NotFound, "namespace nope")

	// Another namespace's run is NOT_FOUND, never PERMISSION_DENIED.
	id := teamRun.GetRun().GetRunId()
	_, err = sched.CancelRun(ctx, &cairnv1.CancelRunRequest{RunId: id})
	wantCode(t, err, codes.NotFound, id)
	_, err = sched.RetryRun(ctx, &cairnv1.RetryRunRequest{RunId: id})
	wantCode(t, err, codes.NotFound, id)
	_, err = sched.CancelRun(ctx, &cairnv1.CancelRunRequest{Namespace: "nope", RunId: id})
	wantCode(t, err, codes.NotFound, "namespace nope")
	dl := uuid.NewString()
	_, err = sched.ReplayDeadLetter(ctx, &cairnv1.ReplayDeadLetterRequest{Namespace: "team-a", Id: dl})
	wantCode(t, err, codes.NotFound, dl)
	_, err = sched.PurgeDeadLetter(ctx, &cairnv1.PurgeDeadLetterRequest{Namespace: "nope", Id: dl})
	wantCode(t, err, codes.NotFound, "namespace nope")
	cr, err := sched.CancelRun(ctx, &cairnv1.CancelRunRequest{Namespace: "team-a", RunId: id, Reason: "test"})
	if err != nil || cr.GetRun().GetState() != cairnv1.RunState_RUN_STATE_CANCELLED || cr.GetRun().GetNamespace() != "team-a" {
		t.Fatalf("cancel in team-a: %v %v", cr, err)
	}

	// Delete: refused while the namespace holds anything, and for default.
	_, err = sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "team-a"})
	wantCode(t, err, codes.FailedPrecondition, "1 workflow, 1 run")
	_, err = sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "default"})
	wantCode(t, err, codes.FailedPrecondition, "default")
	_, err = sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "nope"})
	wantCode(t, err, codes.NotFound, "nope")
	if _, err := sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: "team-b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "team-b"}); err != nil {
		t.Fatalf("delete the empty team-b: %v", err)
	}
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: "team-b", Yaml: workflowYAML})
	wantCode(t, err, codes.NotFound, "namespace team-b")
}

func codeOf(err error) codes.Code {
	st, _ := status.FromError(err)
	return st.Code()
}
