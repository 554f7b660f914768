package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// A conflicting group is undone entirely; the groups before and after it apply.
func TestBatchGroupsAreIndependentAndAtomic(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a", "b", "c", "d")
	ev := func(task, msg string) store.Op {
		return store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: task, Kind: model.EventNote, Message: msg}}
	}
	var b store.Batch
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskPending, To: model.TaskQueued}, ev("a", "ok-1"))
	// Group 1: its first op applies, its second conflicts (b is PENDING, not QUEUED).
	b.Add(
		store.TaskTransition{RunID: r.ID, TaskID: "c", From: model.TaskPending, To: model.TaskQueued},
		ev("c", "must-not-exist"),
		store.TaskTransition{RunID: r.ID, TaskID: "b", From: model.TaskQueued, To: model.TaskCancelled},
	)
	// Group 2: a single op that conflicts (d is not RUNNING).
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "d", From: model.TaskRunning, Attempt: 0, To: model.TaskCancelled})
	// Group 3 applies after the rollback of group 1.
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "b", From: model.TaskPending, To: model.TaskSkipped}, ev("b", "ok-3"))
	// Group 4 depends on group 0 within the same batch.
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskQueued, To: model.TaskCancelled})

	retries := e.s.SavepointRetries()
	res, err := e.s.Apply(e.ctx, epoch, &b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 || res[0] != nil || res[3] != nil || res[4] != nil {
		t.Fatalf("results %v", res)
	}
	if n := e.s.SavepointRetries() - retries; n != 1 {
		t.Fatalf("batch applied %d more times with savepoints, want 1 (a multi-op group conflicted)", n)
	}
	wantIs(t, res[1], store.ErrConflict)
	wantIs(t, res[2], store.ErrConflict)
	var ce *store.ConflictError
	if !errors.As(res[1], &ce) || ce.Expected != "state QUEUED, attempt 0" || ce.Actual != "state PENDING, attempt 0, token 0" {
		t.Fatalf("group 1 conflict detail: %v", res[1])
	}
	want := map[string]model.TaskState{"a": model.TaskCancelled, "b": model.TaskSkipped, "c": model.TaskPending, "d": model.TaskPending}
	for task, st := range want {
		if got := e.task(r.ID, task).State; got != st {
			t.Errorf("task %s: %s, want %s", task, got, st)
		}
	}
	if n := count(e, `SELECT count(*) FROM events WHERE message = 'must-not-exist'`); n != 0 {
		t.Fatal("event of a rolled-back group was committed")
	}
	if n := count(e, `SELECT count(*) FROM events WHERE message IN ('ok-1', 'ok-3')`); n != 2 {
		t.Fatalf("%d events of applied groups, want 2", n)
	}
}

func TestBatchRejectsInvalidOpsBeforeWriting(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	before := snapshot(e)
	for name, op := range map[string]store.Op{
		"forbidden transition":  store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskSucceeded, To: model.TaskQueued},
		"assign without Assign": store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskQueued, To: model.TaskAssigned},
		"retry without time":    store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, To: model.TaskRetryWait},
		"run transition":        store.RunTransition{RunID: r.ID, From: model.RunSucceeded, To: model.RunRunning},
		"stale outcome":         store.FinishAttempt{Token: 1, To: model.AttemptStale},
		"success with failure":  store.FinishAttempt{Token: 1, To: model.AttemptSucceeded, FailureKind: model.FailureTimeout},
		"failure without kind":  store.FinishAttempt{Token: 1, To: model.AttemptFailed},
		"bad http status":       store.FinishAttempt{Token: 1, To: model.AttemptFailed, FailureKind: model.FailureUnexpectedStatus, HTTPStatus: new(int)},
		"run without tasks":     store.InsertRun{Run: model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual}},
		"repeated task":         store.InsertRun{Run: model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual}, TaskIDs: []string{"x", "x"}},
		"bad trigger":           store.InsertRun{Run: model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1, Trigger: "cron"}, TaskIDs: []string{"x"}},
		"bad event kind":        store.AppendEvent{Event: model.Event{RunID: r.ID, Kind: "Bad Kind"}},
		"schedule going back":   store.AdvanceSchedule{Namespace: defNS, Workflow: "wf", ExpectedNext: time.Now(), Next: time.Now().Add(-time.Hour), FiredAt: time.Now()},
	} {
		var b store.Batch
		b.Add(store.AppendEvent{Event: model.Event{RunID: r.ID, Kind: model.EventNote, Message: "valid"}})
		b.Add(op)
		_, err := e.s.Apply(e.ctx, epoch, &b)
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("%s: error %v, want ErrInvalidArgument", name, err)
		}
	}
	var b store.Batch
	b.Add()
	if _, err := e.s.Apply(e.ctx, epoch, &b); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("empty group: %v", err)
	}
	if after := snapshot(e); after != before {
		t.Fatal("an invalid batch wrote rows")
	}
}

// The whole life of a task that fails once, waits, succeeds on its second attempt.
func TestTaskLifecycleWithRetry(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	e.mustApply(store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunRunning})
	tok1 := e.toRunning(r.ID, "a", model.TaskPending, 0)
	if got := e.task(r.ID, "a"); got.State != model.TaskRunning || got.Attempt != 1 || got.FencingToken != tok1 ||
		got.WorkerID != "w1" || got.StartedAt.IsZero() {
		t.Fatalf("running task: %+v", got)
	}
	exit1 := 1
	big := make([]byte, model.MaxAttemptOutput+10)
	big[len(big)-1] = 'Z'
	next := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	e.mustApply(
		store.FinishAttempt{Token: tok1, To: model.AttemptFailed, FailureKind: model.FailureExitCode, ExitCode: &exit1,
			Output: big, Error: "exit status 1", Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: tok1,
			To: model.TaskRetryWait, NextAttemptAt: next, Error: "exit status 1"},
	)
	got := e.task(r.ID, "a")
	if got.State != model.TaskRetryWait || !got.NextAttemptAt.Equal(next) || got.LastError != "exit status 1" || got.WorkerID != "" {
		t.Fatalf("retry wait: %+v", got)
	}
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRetryWait, Attempt: 1, To: model.TaskQueued})
	if q := e.task(r.ID, "a"); q.State != model.TaskQueued || !q.NextAttemptAt.IsZero() {
		t.Fatalf("queued again: %+v, want QUEUED without a next attempt time", q)
	}
	before := time.Now().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	tok2 := e.toRunning(r.ID, "a", model.TaskQueued, 1)
	if a, err := e.s.GetAttempt(e.ctx, tok2); err != nil || a.State != model.AttemptRunning ||
		a.DeadlineAt.Before(before.Add(time.Hour)) || a.DeadlineAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("second attempt: %+v (%v), want RUNNING with its deadline an hour after its start", a, err)
	}
	status := 204
	e.mustApply(
		store.FinishAttempt{Token: tok2, To: model.AttemptSucceeded, HTTPStatus: &status, Output: []byte("ok"), Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 2, Token: tok2, To: model.TaskSucceeded},
		store.RunTransition{RunID: r.ID, From: model.RunRunning, To: model.RunSucceeded},
	)
	as, err := e.s.ListAttempts(e.ctx, defNS, r.ID, "a")
	if err != nil || len(as) != 2 {
		t.Fatalf("attempts: %v %v", as, err)
	}
	a1, a2 := as[0], as[1]
	if a1.Number != 1 || a1.State != model.AttemptFailed || *a1.ExitCode != 1 || a1.HTTPStatus != nil ||
		len(a1.Output) != model.MaxAttemptOutput || a1.Output[len(a1.Output)-1] != 'Z' || !a1.OutputTruncated ||
		a1.FinishedAt.IsZero() || a1.DeadlineAt.IsZero() {
		t.Fatalf("attempt 1: %+v", a1)
	}
	if a2.Number != 2 || a2.State != model.AttemptSucceeded || a2.ExitCode != nil || *a2.HTTPStatus != 204 ||
		string(a2.Output) != "ok" || a2.FailureKind != model.FailureNone {
		t.Fatalf("attempt 2: %+v", a2)
	}
	d, err := e.s.GetRun(e.ctx, defNS, r.ID)
	if err != nil || d.Run.State != model.RunSucceeded || d.Run.StartedAt.IsZero() || d.Run.FinishedAt.IsZero() ||
		d.Run.Params["day"] != "2026-01-01" {
		t.Fatalf("run: %+v %v", d.Run, err)
	}
	if _, err := e.s.ListAttempts(e.ctx, defNS, r.ID, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attempts of missing task: %v", err)
	}
	if _, err := e.s.GetAttempt(e.ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing attempt: %v", err)
	}
	if _, err := e.s.GetRun(e.ctx, defNS, uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
}

// A start time given with the start is stored, kept within [assigned_at, now()] on the
// attempt (at most now() on the task run); without one the transaction's time is used.
func TestStartedAtIsKeptWithinAssignedAndNow(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a", "b", "c", "d")
	e.mustApply(store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunRunning})
	attempt := func(task string) model.Attempt {
		t.Helper()
		as, err := e.s.ListAttempts(e.ctx, defNS, r.ID, task)
		if err != nil || len(as) != 1 {
			t.Fatalf("attempts of %s: %+v, %v", task, as, err)
		}
		return as[0]
	}
	assign := func(task string) (int64, model.Attempt) {
		t.Helper()
		token := epoch<<32 | int64(tokenSeq.Add(1))
		e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskPending, To: model.TaskQueued})
		e.mustApply(
			store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskQueued, To: model.TaskAssigned,
				Assign: &store.Assignment{Token: token, WorkerID: "w1"}},
			store.InsertAttempt{ID: uuid.New(), RunID: r.ID, TaskID: task, Number: 1, Token: token, WorkerID: "w1"})
		return token, attempt(task)
	}
	start := func(task string, token int64, at time.Time) (model.TaskRun, model.Attempt) {
		t.Helper()
		e.mustApply(
			store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskAssigned, Attempt: 1, Token: token, To: model.TaskRunning, StartedAt: at},
			store.StartAttempt{Token: token, StartedAt: at})
		return e.task(r.ID, task), attempt(task)
	}

	tok, _ := assign("a")
	if tr, a := start("a", tok, time.Time{}); a.StartedAt.IsZero() || !tr.StartedAt.Equal(a.StartedAt) || a.StartedAt.Before(a.AssignedAt) {
		t.Fatalf("no start time: task %v, attempt %+v", tr.StartedAt, a)
	}

	tok, a := assign("b")
	time.Sleep(5 * time.Millisecond)
	given := a.AssignedAt.Add(time.Millisecond)
	if tr, a := start("b", tok, given); !a.StartedAt.Equal(given) || !tr.StartedAt.Equal(given) {
		t.Fatalf("start %v in range: task %v, attempt %+v", given, tr.StartedAt, a)
	}

	tok, _ = assign("c")
	if tr, a := start("c", tok, time.Now().Add(time.Hour)); a.StartedAt.After(time.Now()) || tr.StartedAt.After(time.Now()) {
		t.Fatalf("future start not capped: task %v, attempt %v", tr.StartedAt, a.StartedAt)
	}

	tok, _ = assign("d")
	if _, a := start("d", tok, time.Unix(0, 0)); !a.StartedAt.Equal(a.AssignedAt) {
		t.Fatalf("start before the assignment not raised to assigned_at: %+v", a)
	}
}

// Without a conflict in a multi-op group the batch commits in one savepoint-free
// transaction; a single-op group's conflict does not need savepoints either.
func TestBatchWithoutGroupConflictsNeedsNoSavepoints(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	tasks := make([]string, 100)
	for i := range tasks {
		tasks[i] = fmt.Sprintf("t%d", i)
	}
	r := e.run("wf", tasks...)
	var b store.Batch
	for _, task := range tasks {
		b.Add(store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskPending, To: model.TaskQueued},
			store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: task, Kind: model.EventNote, Message: "queued"}})
	}
	// A single op that conflicts (t0 is PENDING in the database until this batch commits,
	// and QUEUED after group 0, not RUNNING).
	bad := b.Add(store.TaskTransition{RunID: r.ID, TaskID: "t0", From: model.TaskRunning, To: model.TaskCancelled})
	retries := e.s.SavepointRetries()
	res, err := e.s.Apply(e.ctx, epoch, &b)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.s.SavepointRetries() - retries; n != 0 {
		t.Fatalf("batch applied %d more times with savepoints, want 0", n)
	}
	for i, r := range res {
		if (i == bad) != (r != nil) {
			t.Fatalf("group %d: %v", i, r)
		}
	}
	wantIs(t, res[bad], store.ErrConflict)
	var ce *store.ConflictError
	if !errors.As(res[bad], &ce) || ce.Actual != "state QUEUED, attempt 0, token 0" {
		t.Fatalf("conflict detail: %v", res[bad])
	}
	if n := count(e, `SELECT count(*) FROM task_runs WHERE run_id = $1 AND state = 'QUEUED'`, r.ID); n != len(tasks) {
		t.Fatalf("%d tasks queued, want %d", n, len(tasks))
	}
	if n := count(e, `SELECT count(*) FROM events WHERE run_id = $1 AND message = 'queued'`, r.ID); n != len(tasks) {
		t.Fatalf("%d events, want %d", n, len(tasks))
	}
	// The events, inserted together, keep the order of their groups.
	rows, err := e.pool.Query(e.ctx, `SELECT task_id FROM events WHERE run_id = $1 AND message = 'queued' ORDER BY seq`, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	order, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != fmt.Sprint(tasks) {
		t.Fatalf("events in order %v, want %v", order, tasks)
	}
}
