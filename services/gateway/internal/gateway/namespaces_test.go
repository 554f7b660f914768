package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

// wantStatus fails unless r has the HTTP status code and its message contains every part.
func wantStatus(t *testing.T, what string, r httpResult, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: %d %s, want %d", what, r.code, r.body, code)
		return
	}
	if len(parts) == 0 {
		return
	}
	msg := errorMessage(t, r)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: message %q does not contain %q", what, msg, p)
		}
	}
}

// Namespaces over REST, in both path shapes: /v1/namespaces/{namespace}/... and the paths
// without a namespace, which are the namespace default. A resource of another namespace is
// 404 like a missing one; an unknown namespace is 404 naming it.
func TestNamespacesOverREST(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	base := c.HTTPURL + "/v1"
	team := base + "/namespaces/team-a"

	wantStatus(t, "create team-a", do(t, "POST", base+"/namespaces", map[string]string{"namespace": "team-a", "description": "Team A"}), 200)
	wantStatus(t, "create team-a again", do(t, "POST", base+"/namespaces", map[string]string{"namespace": "team-a"}), 409, "team-a")
	wantStatus(t, "create a bad name", do(t, "POST", base+"/namespaces", map[string]string{"namespace": "Team_A"}), 400, "namespace: ")
	r := do(t, "GET", base+"/namespaces", nil)
	if r.code != 200 || !strings.Contains(string(r.body), `"name":"default"`) || !strings.Contains(string(r.body), `"description":"Team A"`) {
		t.Fatalf("list namespaces: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", team, nil); r.code != 200 || r.json(t)["namespace"].(map[string]any)["name"] != "team-a" {
		t.Fatalf("get team-a: %d %s", r.code, r.body)
	}

	// etl in both namespaces, with different tasks.
	wantStatus(t, "apply etl in default", do(t, "POST", base+"/workflows", map[string]string{"yaml": etlYAML}), 200)
	teamYAML := "name: etl\ntasks:\n  - {id: only, type: noop}\n"
	r = do(t, "POST", team+"/workflows", map[string]string{"yaml": teamYAML})
	if r.code != 200 || r.json(t)["workflow"].(map[string]any)["namespace"] != "team-a" {
		t.Fatalf("apply etl in team-a: %d %s", r.code, r.body)
	}
	for url, want := range map[string]int{base + "/workflows/etl": 2, team + "/workflows/etl": 1} {
		r := do(t, "GET", url, nil)
		if r.code != 200 || len(r.json(t)["workflow"].(map[string]any)["tasks"].([]any)) != want {
			t.Errorf("GET %s: %d %s; want the workflow with %d task(s)", url, r.code, r.body, want)
		}
	}

	// A run in team-a: found only there (the path, or ?namespace= on the path without one).
	r = do(t, "POST", team+"/workflows/etl/runs", map[string]string{"idempotency_key": "k"})
	if r.code != 200 {
		t.Fatalf("start in team-a: %d %s", r.code, r.body)
	}
	run := r.json(t)["run"].(map[string]any)
	runID := run["run_id"].(string)
	if run["namespace"] != "team-a" {
		t.Errorf("run namespace %v, want team-a", run["namespace"])
	}
	if other := startRun(t, c, "etl", map[string]string{"idempotency_key": "k"}); other == runID {
		t.Errorf("the same idempotency key in default returned team-a's run")
	}
	for _, url := range []string{team + "/runs/" + runID, base + "/runs/" + runID + "?namespace=team-a"} {
		if r := do(t, "GET", url, nil); r.code != 200 || r.json(t)["run"].(map[string]any)["namespace"] != "team-a" {
			t.Errorf("GET %s: %d %s", url, r.code, r.body)
		}
	}
	wantStatus(t, "team-a's run from default", do(t, "GET", base+"/runs/"+runID, nil), 404, runID)
	wantStatus(t, "team-a's attempts from default", do(t, "GET", base+"/runs/"+runID+"/tasks/only/attempts", nil), 404, runID)
	wantStatus(t, "team-a's attempts", do(t, "GET", team+"/runs/"+runID+"/tasks/only/attempts", nil), 200)
	wantStatus(t, "cancel team-a's run from default", do(t, "POST", base+"/runs/"+runID+":cancel", "{}"), 404)
	wantStatus(t, "watch team-a's run from default", do(t, "GET", base+"/runs/"+runID+":watch", nil), 404)
	r = do(t, "GET", base+"/runs", nil)
	if r.code != 200 || strings.Contains(string(r.body), runID) {
		t.Errorf("default's runs list team-a's run: %d %s", r.code, r.body)
	}
	r = do(t, "GET", team+"/runs", nil)
	if r.code != 200 || !strings.Contains(string(r.body), runID) {
		t.Errorf("team-a's runs lack its run: %d %s", r.code, r.body)
	}
	// Watch, in the namespaced shape: the history, then the end.
	c.Progress(runID, map[string]model.TaskState{"only": model.TaskSucceeded})
	c.Finish(runID, model.RunSucceeded, "")
	r = do(t, "GET", team+"/runs/"+runID+":watch", nil)
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); r.code != 200 || len(lines) != 3 || !strings.Contains(lines[2], "RUN_STATE_SUCCEEDED") {
		t.Errorf("watch in team-a: %d %s", r.code, r.body)
	}

	// A dead letter of team-a's run is team-a's.
	dl := c.DeadLetter(runID, "only", "etl", model.AttemptError{Attempt: 1, FailureKind: model.FailureExitCode, Error: "exit 1"})
	r = do(t, "GET", team+"/deadletters/"+dl, nil)
	if r.code != 200 || r.json(t)["dead_letter"].(map[string]any)["namespace"] != "team-a" {
		t.Errorf("team-a's dead letter: %d %s", r.code, r.body)
	}
	wantStatus(t, "team-a's dead letter from default", do(t, "GET", base+"/deadletters/"+dl, nil), 404, dl)
	if r := do(t, "GET", base+"/deadletters", nil); r.code != 200 || strings.Contains(string(r.body), dl) {
		t.Errorf("default's dead letters list team-a's: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", team+"/deadletters", nil); r.code != 200 || !strings.Contains(string(r.body), dl) {
		t.Errorf("team-a's dead letters lack its own: %d %s", r.code, r.body)
	}

	// An unknown namespace is 404 naming it, for reads and writes.
	nope := base + "/namespaces/nope"
	for what, r := range map[string]httpResult{
		"list runs":      do(t, "GET", nope+"/runs", nil),
		"list workflows": do(t, "GET", nope+"/workflows", nil),
		"list dlq":       do(t, "GET", nope+"/deadletters", nil),
		"get run":        do(t, "GET", nope+"/runs/"+runID, nil),
		"start run":      do(t, "POST", nope+"/workflows/etl/runs", "{}"),
		"get namespace":  do(t, "GET", nope, nil),
	} {
		wantStatus(t, what+" in nope", r, 404, "namespace nope")
	}

	// Delete: refused while team-a holds anything (naming it), done once empty.
	wantStatus(t, "delete team-a", do(t, "DELETE", team, nil), 400, "still holds", "1 workflow")
	wantStatus(t, "delete default", do(t, "DELETE", base+"/namespaces/default", nil), 400, "default")
	wantStatus(t, "create team-b", do(t, "POST", base+"/namespaces", map[string]string{"namespace": "team-b"}), 200)
	wantStatus(t, "delete team-b", do(t, "DELETE", base+"/namespaces/team-b", nil), 200)
	wantStatus(t, "get team-b after its delete", do(t, "GET", base+"/namespaces/team-b", nil), 404, "team-b")
	wantStatus(t, "delete team-b again", do(t, "DELETE", base+"/namespaces/team-b", nil), 404)

	// gRPC: the namespace field, empty meaning default; a bad one names the field.
	runs := cairnv1.NewRunServiceClient(c.Conn())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := runs.GetRun(ctx, &cairnv1.GetRunRequest{Namespace: "team-a", RunId: runID}); err != nil || got.GetRun().GetNamespace() != "team-a" {
		t.Errorf("gRPC GetRun in team-a: %v %v", got, err)
	}
	_, err := runs.GetRun(ctx, &cairnv1.GetRunRequest{RunId: runID})
	if status.Code(err) != codes.NotFound {
		t.Errorf("gRPC GetRun of team-a's run in default: %v, want NOT_FOUND", err)
	}
	_, err = runs.ListRuns(ctx, &cairnv1.ListRunsRequest{Namespace: "a b"})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "namespace: ") {
		t.Errorf("gRPC ListRuns with a bad namespace: %v, want INVALID_ARGUMENT naming namespace", err)
	}
	ns := cairnv1.NewNamespaceServiceClient(c.Conn())
	if got, err := ns.GetNamespace(ctx, &cairnv1.GetNamespaceRequest{}); err != nil || got.GetNamespace().GetName() != "default" {
		t.Errorf("GetNamespace with no name: %v %v, want default", got, err)
	}
}
