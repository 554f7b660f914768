package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

func (e *env) namespace(name string) {
	e.t.Helper()
	if _, err := e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: name}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) workflowIn(ns, name string) model.WorkflowVersion {
	e.t.Helper()
	v, _, err := e.s.PutVersion(e.ctx, epoch, ns, name, "", "name: "+name+"\n", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) runIn(ns, workflow, key string, tasks ...string) (model.Run, bool) {
	e.t.Helper()
	r, created, err := e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: ns, Workflow: workflow, Version: 1,
		Trigger: model.TriggerManual, IdempotencyKey: key}, tasks)
	if err != nil {
		e.t.Fatalf("create run in %s: %v", ns, err)
	}
	return r, created
}

// deadLetter fails the run's only task for good: attempt, dead letter, run FAILED.
func (e *env) deadLetter(r model.Run, task string) model.DeadLetter {
	e.t.Helper()
	tok := e.toRunning(r.ID, task, model.TaskPending, 0)
	d := model.DeadLetter{ID: uuid.New(), RunID: r.ID, TaskID: task, Workflow: r.Workflow,
		Errors: []model.AttemptError{{Attempt: 1, FailureKind: model.FailureExitCode, Error: "exit 1"}}}
	e.mustApply(
		store.FinishAttempt{Token: tok, To: model.AttemptFailed, FailureKind: model.FailureExitCode, Error: "exit 1", Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskRunning, Attempt: 1, Token: tok, To: model.TaskDeadLettered},
		store.InsertDeadLetter{DeadLetter: d},
		store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunFailed},
	)
	return d
}

// A run, its attempts, events and dead letters, and a workflow are found only in their own
// namespace: from another one each is ErrNotFound (or an empty list), never another error.
func TestCrossNamespaceIDsAreNotFound(t *testing.T) {
	e := newEnv(t)
	e.namespace("team-a")
	e.namespace("team-b")
	e.workflowIn("team-a", "etl")
	r, _ := e.runIn("team-a", "etl", "", "t")
	dl := e.deadLetter(r, "t")
	if dl, err := e.s.GetDeadLetter(e.ctx, "team-a", dl.ID); err != nil || dl.Namespace != "team-a" {
		t.Fatalf("dead letter in its namespace: %+v %v (the namespace is the run's)", dl, err)
	}

	for _, other := range []string{"team-b", defNS} {
		wantIs(t, func() error { _, err := e.s.GetRun(e.ctx, other, r.ID); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.GetRunRow(e.ctx, other, r.ID); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.ListAttempts(e.ctx, other, r.ID, "t"); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.GetDeadLetter(e.ctx, other, dl.ID); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.GetWorkflow(e.ctx, other, "etl"); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.GetVersion(e.ctx, other, "etl", 0); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, err := e.s.GetVersion(e.ctx, other, "etl", 1); return err }(), store.ErrNotFound)
		wantIs(t, func() error { _, _, err := e.s.ListVersions(e.ctx, other, "etl", store.PageRequest{}); return err }(), store.ErrNotFound)
		if evs, err := e.s.EventsSince(e.ctx, other, r.ID, 0, 0); err != nil || len(evs) != 0 {
			t.Errorf("events of the run from %s: %d, %v; want none", other, len(evs), err)
		}
		if open, err := e.s.OpenDeadLetters(e.ctx, other, r.ID); err != nil || len(open) != 0 {
			t.Errorf("open dead letters of the run from %s: %v, %v; want none", other, open, err)
		}
		runs, _, err := e.s.ListRuns(e.ctx, other, store.RunFilter{}, store.PageRequest{})
		ws, _, err2 := e.s.ListWorkflows(e.ctx, other, store.PageRequest{})
		ds, _, err3 := e.s.ListDeadLetters(e.ctx, other, store.DeadLetterFilter{}, store.PageRequest{})
		if len(runs)+len(ws)+len(ds) != 0 || errors.Join(err, err2, err3) != nil {
			t.Errorf("listings of %s: %d runs, %d workflows, %d dead letters, %v; want none", other, len(runs), len(ws), len(ds),
				errors.Join(err, err2, err3))
		}
		// A purge named in another namespace finds nothing to delete.
		wantIs(t, e.apply(store.DeleteDeadLetter{Namespace: other, ID: dl.ID}), store.ErrConflict)
	}
	// In its own namespace everything is there.
	if d, err := e.s.GetRun(e.ctx, "team-a", r.ID); err != nil || d.Run.Namespace != "team-a" || len(d.Tasks) != 1 {
		t.Fatalf("run in team-a: %+v %v", d, err)
	}
	if as, err := e.s.ListAttempts(e.ctx, "team-a", r.ID, "t"); err != nil || len(as) != 1 {
		t.Fatalf("attempts in team-a: %d %v", len(as), err)
	}
	if evs, err := e.s.EventsSince(e.ctx, "team-a", r.ID, 0, 0); err != nil {
		t.Fatalf("events in team-a: %d %v", len(evs), err)
	}
	if ds, _, err := e.s.ListDeadLetters(e.ctx, "team-a", store.DeadLetterFilter{Workflow: "etl", Open: true}, store.PageRequest{}); err != nil ||
		len(ds) != 1 || ds[0].ID != dl.ID {
		t.Fatalf("dead letters of team-a/etl: %+v %v", ds, err)
	}
	e.mustApply(store.DeleteDeadLetter{Namespace: "team-a", ID: dl.ID})
	// A page token of one namespace's listing is not one of another's.
	e.workflowIn("team-a", "etl2")
	_, next, err := e.s.ListWorkflows(e.ctx, "team-a", store.PageRequest{Size: 1})
	if err != nil || next == "" {
		t.Fatalf("first page: %q %v", next, err)
	}
	wantIs(t, func() error {
		_, _, err := e.s.ListWorkflows(e.ctx, "team-b", store.PageRequest{Size: 1, Token: next})
		return err
	}(),
		store.ErrInvalidPageToken)
}

// The same workflow name in two namespaces is two workflows, each with its own versions,
// schedule and idempotency keys.
func TestSameNamesInTwoNamespaces(t *testing.T) {
	e := newEnv(t)
	e.namespace("team-a")
	yaml := "name: etl\n"
	for _, ns := range []string{defNS, "team-a"} {
		v, created, err := e.s.PutVersion(e.ctx, epoch, ns, "etl", "in "+ns, yaml, nil)
		if err != nil || !created || v.Version != 1 || v.Namespace != ns {
			t.Fatalf("put etl in %s: %+v created=%v %v; want a new version 1 of its own", ns, v, created, err)
		}
	}
	if v, created, err := e.s.PutVersion(e.ctx, epoch, "team-a", "etl", "", yaml+"# v2\n", nil); err != nil || !created || v.Version != 2 {
		t.Fatalf("second version in team-a: %+v %v %v", v, created, err)
	}
	for ns, want := range map[string]int{defNS: 1, "team-a": 2} {
		w, err := e.s.GetWorkflow(e.ctx, ns, "etl")
		if err != nil || w.LatestVersion != want || w.Namespace != ns {
			t.Errorf("etl in %s: %+v %v; want latest version %d", ns, w, err, want)
		}
	}

	// Idempotency keys are per (namespace, workflow).
	ra, created := e.runIn(defNS, "etl", "nightly", "a")
	rb, createdB := e.runIn("team-a", "etl", "nightly", "a")
	if !created || !createdB || ra.ID == rb.ID {
		t.Fatalf("one key in two namespaces: %v %v, runs %s %s; want two new runs", created, createdB, ra.ID, rb.ID)
	}
	again, created := e.runIn("team-a", "etl", "nightly", "a")
	if created || again.ID != rb.ID || again.Namespace != "team-a" {
		t.Fatalf("the key again in team-a: created=%v run %s (%s); want the existing %s", created, again.ID, again.Namespace, rb.ID)
	}
	if r, err := e.s.RunByKey(e.ctx, defNS, "etl", "nightly"); err != nil || r.ID != ra.ID {
		t.Fatalf("run by key in default: %s %v, want %s", r.ID, err, ra.ID)
	}

	// Schedules are per (namespace, workflow) as well.
	for _, ns := range []string{defNS, "team-a"} {
		e.mustApply(store.PutSchedule{Schedule: model.Schedule{Namespace: ns, Workflow: "etl", Cron: "0 " + map[string]string{defNS: "1", "team-a": "2"}[ns] + " * * *",
			NextFireAt: ra.CreatedAt}})
	}
	due, err := e.s.DueSchedules(e.ctx, ra.CreatedAt, 10)
	if err != nil || len(due) != 2 || due[0].Namespace != defNS || due[1].Namespace != "team-a" {
		t.Fatalf("due schedules: %+v %v; want one per namespace", due, err)
	}
	e.mustApply(store.DeleteSchedule{Namespace: "team-a", Workflow: "etl"})
	if sc, err := e.s.GetSchedule(e.ctx, defNS, "etl"); err != nil || sc.Cron != "0 1 * * *" {
		t.Fatalf("default's schedule after deleting team-a's: %+v %v", sc, err)
	}
	wantIs(t, func() error { _, err := e.s.GetSchedule(e.ctx, "team-a", "etl"); return err }(), store.ErrNotFound)
	wantIs(t, e.apply(store.AdvanceSchedule{Namespace: "team-a", Workflow: "etl", ExpectedNext: ra.CreatedAt,
		Next: ra.CreatedAt.Add(1), FiredAt: ra.CreatedAt}), store.ErrConflict)
}

func TestNamespaceLifecycle(t *testing.T) {
	e := newEnv(t)
	n, err := e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: "team-a", Description: "Team A"})
	if err != nil || n.Name != "team-a" || n.Description != "Team A" || n.CreatedAt.IsZero() {
		t.Fatalf("create: %+v %v", n, err)
	}
	wantIs(t, func() error { _, err := e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: "team-a"}); return err }(),
		store.ErrAlreadyExists)
	wantIs(t, func() error { _, err := e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: "Team_A"}); return err }(),
		store.ErrInvalidArgument)
	wantIs(t, func() error {
		_, err := e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: "x", Description: strings.Repeat("d", 1025)})
		return err
	}(), store.ErrInvalidArgument)
	if got, err := e.s.GetNamespace(e.ctx, "team-a"); err != nil || got != n {
		t.Fatalf("get: %+v %v, want %+v", got, err, n)
	}
	_, err = e.s.GetNamespace(e.ctx, "nope")
	if wantIs(t, err, store.ErrNotFound); !strings.Contains(err.Error(), "namespace nope") {
		t.Errorf("unknown namespace: %v does not name it", err)
	}

	// Writes into an unknown namespace are ErrNotFound naming it, and write nothing.
	_, _, err = e.s.PutVersion(e.ctx, epoch, "nope", "etl", "", "name: etl\n", nil)
	if wantIs(t, err, store.ErrNotFound); !strings.Contains(err.Error(), "namespace nope") {
		t.Errorf("put version in an unknown namespace: %v does not name it", err)
	}

	// Not empty: refused, naming what it holds.
	e.workflowIn("team-a", "etl")
	e.workflowIn("team-a", "etl2")
	r, _ := e.runIn("team-a", "etl", "", "t")
	e.deadLetter(r, "t")
	err = e.s.DeleteNamespace(e.ctx, epoch, "team-a")
	var ne *store.NotEmptyError
	if !errors.As(err, &ne) || !errors.Is(err, store.ErrNotEmpty) || ne.Workflows != 2 || ne.Runs != 1 || ne.DeadLetters != 1 {
		t.Fatalf("delete a namespace holding 2 workflows, 1 run, 1 dead letter: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "2 workflows, 1 run, 1 open dead letter") {
		t.Errorf("refusal %q does not say what the namespace holds", msg)
	}
	if _, err := e.s.GetNamespace(e.ctx, "team-a"); err != nil {
		t.Fatalf("the refused delete removed the namespace: %v", err)
	}
	wantIs(t, e.s.DeleteNamespace(e.ctx, epoch, defNS), store.ErrInvalidArgument)
	wantIs(t, e.s.DeleteNamespace(e.ctx, epoch, "nope"), store.ErrNotFound)
	wantIs(t, e.s.DeleteNamespace(e.ctx, epoch+1, "team-a"), store.ErrStaleEpoch)

	// Empty: deleted, and gone from the list.
	e.namespace("team-b")
	if err := e.s.DeleteNamespace(e.ctx, epoch, "team-b"); err != nil {
		t.Fatalf("delete an empty namespace: %v", err)
	}
	wantIs(t, func() error { _, err := e.s.GetNamespace(e.ctx, "team-b"); return err }(), store.ErrNotFound)

	// The list, page by page, by name.
	for _, name := range []string{"c", "b", "a"} {
		e.namespace(name)
	}
	var names []string
	for token := ""; ; {
		ns, next, err := e.s.ListNamespaces(e.ctx, store.PageRequest{Size: 2, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			names = append(names, n.Name)
		}
		if token = next; token == "" {
			break
		}
	}
	if got := strings.Join(names, ","); got != "a,b,c,default,team-a" {
		t.Fatalf("namespaces %s, want a,b,c,default,team-a", got)
	}
}

// A workflow and a run created while their namespace is deleted: either the delete is
// refused (the namespace holds them) or they are refused (the namespace is gone). Nothing is
// ever left in a namespace that does not exist.
func TestConcurrentCreateRunAndDeleteNamespaceLeaveNoOrphan(t *testing.T) {
	e := newEnv(t)
	const rounds = 40
	outcomes := map[string]int{}
	for i := range rounds {
		ns := fmt.Sprintf("race-%d", i)
		e.namespace(ns)
		var wg sync.WaitGroup
		var createErr, deleteErr error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			if _, _, err := e.s.PutVersion(e.ctx, epoch, ns, "etl", "", "name: etl\n", nil); err != nil {
				createErr = err
				return
			}
			_, _, createErr = e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: ns, Workflow: "etl", Version: 1,
				Trigger: model.TriggerManual}, []string{"a"})
		}()
		go func() {
			defer wg.Done()
			<-start
			deleteErr = e.s.DeleteNamespace(e.ctx, epoch, ns)
		}()
		close(start)
		wg.Wait()
		switch {
		case createErr == nil && errors.Is(deleteErr, store.ErrNotEmpty):
			outcomes["delete refused"]++
		case errors.Is(createErr, store.ErrNotFound) && deleteErr == nil:
			outcomes["create refused"]++
		default:
			t.Fatalf("round %d: create: %v; delete: %v; want exactly one of them refused", i, createErr, deleteErr)
		}
	}
	for _, table := range []string{"workflows", "workflow_versions", "runs", "dead_letters", "schedules"} {
		if n := count(e, `SELECT count(*) FROM `+table+` x WHERE NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.name = x.namespace)`); n != 0 {
			t.Errorf("%d rows of %s in a namespace that does not exist", n, table)
		}
	}
	if n := count(e, `SELECT count(*) FROM task_runs t WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = t.run_id)`); n != 0 {
		t.Errorf("%d orphan task runs", n)
	}
	t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
}
