package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

func TestTakeLeadership(t *testing.T) {
	e := newEnv(t) // epoch 7, "test-leader"
	l, err := e.s.TakeLeadership(e.ctx, epoch, "test-leader")
	if err != nil || l.Epoch != epoch {
		t.Fatalf("retake same epoch: %+v, %v", l, err)
	}
	for _, c := range []struct {
		epoch  int64
		holder string
	}{{epoch, "someone-else"}, {epoch - 1, "old"}, {1, "older"}} {
		_, err := e.s.TakeLeadership(e.ctx, c.epoch, c.holder)
		wantIs(t, err, store.ErrStaleEpoch)
		var se *store.StaleEpochError
		if !errors.As(err, &se) || se.Current != epoch || se.Epoch != c.epoch {
			t.Fatalf("epoch %d: error %v", c.epoch, err)
		}
	}
	l, err = e.s.TakeLeadership(e.ctx, epoch+5, "next")
	if err != nil || l.Epoch != epoch+5 || l.Holder != "next" {
		t.Fatalf("raise: %+v, %v", l, err)
	}
	if got, _ := e.s.GetLeadership(e.ctx); got.Epoch != epoch+5 || got.Holder != "next" {
		t.Fatalf("stored leadership %+v", got)
	}
	for _, bad := range []int64{0, -1} {
		_, err := e.s.TakeLeadership(e.ctx, bad, "x")
		wantIs(t, err, store.ErrInvalidArgument)
	}
	_, err = e.s.TakeLeadership(e.ctx, 100, "")
	wantIs(t, err, store.ErrInvalidArgument)
}

// A deposed leader's writes are rejected and change nothing, whatever the write.
func TestStaleEpochChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a", "b")
	e.namespace("other") // empty: deleting it would succeed under the current epoch
	if _, err := e.s.TakeLeadership(e.ctx, epoch+1, "new-leader"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(e)

	var b store.Batch
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskPending, To: model.TaskQueued})
	b.Add(store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunRunning})
	b.Add(store.AppendEvent{Event: model.Event{RunID: r.ID, Kind: model.EventNote, Message: "hi"}})
	_, err := e.s.Apply(e.ctx, epoch, &b)
	wantIs(t, err, store.ErrStaleEpoch)
	var se *store.StaleEpochError
	if !errors.As(err, &se) || se.Epoch != epoch || se.Current != epoch+1 {
		t.Fatalf("error detail: %v", err)
	}
	_, _, err = e.s.PutVersion(e.ctx, epoch, defNS, "wf", "", "name: wf\nchanged: 1\n", nil)
	wantIs(t, err, store.ErrStaleEpoch)
	_, _, err = e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual}, []string{"a"})
	wantIs(t, err, store.ErrStaleEpoch)
	_, err = e.s.Purge(e.ctx, epoch, time.Now().Add(time.Hour), 10)
	wantIs(t, err, store.ErrStaleEpoch)
	_, err = e.s.CreateNamespace(e.ctx, epoch, model.Namespace{Name: "team-a"})
	wantIs(t, err, store.ErrStaleEpoch)
	wantIs(t, e.s.DeleteNamespace(e.ctx, epoch, "other"), store.ErrStaleEpoch)
	// A future epoch that was never taken is not current either.
	_, err = e.s.Apply(e.ctx, epoch+2, &b)
	wantIs(t, err, store.ErrStaleEpoch)

	if after := snapshot(e); after != before {
		t.Fatalf("rows changed under a stale epoch:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The new leader can write.
	res, err := e.s.Apply(e.ctx, epoch+1, &b)
	if err != nil || res[0] != nil || res[1] != nil || res[2] != nil {
		t.Fatalf("new leader: %v %v", res, err)
	}
}

// TakeLeadership waits for an in-flight write of the old leader (which holds the
// leadership row FOR SHARE); once it returns, the old epoch can no longer commit anything.
func TestTakeLeadershipWaitsForInFlightWrite(t *testing.T) {
	e := newEnv(t)
	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT epoch FROM leadership FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.s.TakeLeadership(e.ctx, epoch+1, "new")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("TakeLeadership returned (%v) while a leader write transaction held the row", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Two writers attempting the same transition: exactly one applies, the other conflicts.
func TestConcurrentTransitionExactlyOneWins(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	const iterations = 60
	tasks := make([]string, iterations)
	for i := range tasks {
		tasks[i] = uuid.NewString()[:8]
	}
	r := e.run("wf", tasks...)
	for i, task := range tasks {
		// Alternate between a plain transition and an assignment (two statements, one group).
		group := func(worker string) []store.Op {
			if i%2 == 0 {
				return []store.Op{store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskPending, To: model.TaskQueued}}
			}
			tok := epoch<<32 | int64(tokenSeq.Add(1))
			return []store.Op{
				store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskQueued, Attempt: 0, To: model.TaskAssigned,
					Assign: &store.Assignment{Token: tok, WorkerID: worker}},
				store.InsertAttempt{ID: uuid.New(), RunID: r.ID, TaskID: task, Number: 1, Token: tok, WorkerID: worker},
			}
		}
		if i%2 == 1 {
			e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: task, From: model.TaskPending, To: model.TaskQueued})
		}
		var wg sync.WaitGroup
		results := make([]error, 2)
		start := make(chan struct{})
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var b store.Batch
				b.Add(group([]string{"w0", "w1"}[w])...)
				res, err := e.s.Apply(e.ctx, epoch, &b)
				if err != nil {
					results[w] = err
					return
				}
				results[w] = res[0]
			}()
		}
		close(start)
		wg.Wait()
		wins, conflicts := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrConflict):
				conflicts++
				var ce *store.ConflictError
				if !errors.As(err, &ce) || ce.Expected == "" || ce.Actual == "" {
					t.Errorf("conflict without detail: %v", err)
				}
			default:
				t.Fatalf("iteration %d: unexpected error %v", i, err)
			}
		}
		if wins != 1 || conflicts != 1 {
			t.Fatalf("iteration %d: %d wins, %d conflicts: %v", i, wins, conflicts, results)
		}
		if i%2 == 1 {
			if n := count(e, `SELECT count(*) FROM attempts WHERE run_id = $1 AND task_id = $2`, r.ID, task); n != 1 {
				t.Fatalf("iteration %d: %d attempts, want 1 (the loser's insert must be rolled back)", i, n)
			}
		}
	}
}

// A worker result carrying a token that is no longer current is recorded as stale on its
// attempt row and changes nothing else.
func TestStaleAttemptResult(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	old := e.toRunning(r.ID, "a", model.TaskPending, 0)
	// The worker is lost: the leader finishes attempt 1 LOST and re-queues the task, then
	// assigns attempt 2.
	e.mustApply(
		store.FinishAttempt{Token: old, To: model.AttemptLost, FailureKind: model.FailureLost, Error: "worker w1 lease expired"},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: old, To: model.TaskQueued},
	)
	cur := e.toRunning(r.ID, "a", model.TaskQueued, 1)
	before := e.task(r.ID, "a")
	eventsBefore := count(e, `SELECT count(*) FROM events`)

	// The zombie reports success for attempt 1.
	exit := 0
	err := e.apply(
		store.FinishAttempt{Token: old, To: model.AttemptSucceeded, ExitCode: &exit, Output: []byte("done"), Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: old, To: model.TaskSucceeded},
		store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: "a", Kind: model.EventTaskState, From: "RUNNING", To: "SUCCEEDED"}},
	)
	wantIs(t, err, store.ErrStaleAttempt)
	var sa *store.StaleAttemptError
	if !errors.As(err, &sa) || sa.Token != old || sa.Current != cur {
		t.Fatalf("stale detail: %v", err)
	}
	if after := e.task(r.ID, "a"); after != before {
		t.Fatalf("task run changed by a stale result:\n%+v\n%+v", before, after)
	}
	a1, err := e.s.GetAttempt(e.ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if a1.State != model.AttemptLost || a1.StaleResultAt.IsZero() || a1.StaleOutcome != "SUCCEEDED" ||
		len(a1.Output) != 0 || a1.ExitCode != nil {
		t.Fatalf("stale attempt row: %+v", a1)
	}
	a2, _ := e.s.GetAttempt(e.ctx, cur)
	if a2.State != model.AttemptRunning || !a2.StaleResultAt.IsZero() {
		t.Fatalf("current attempt changed: %+v", a2)
	}
	// Only the attempt_stale event was added; the group's own event was rolled back.
	if n := count(e, `SELECT count(*) FROM events`); n != eventsBefore+1 {
		t.Fatalf("%d events, want %d", n, eventsBefore+1)
	}
	if n := count(e, `SELECT count(*) FROM events WHERE kind = 'attempt_stale' AND attempt = 1`); n != 1 {
		t.Fatalf("%d attempt_stale events", n)
	}

	// A token nobody issued is stale too, and nothing is recorded.
	err = e.apply(store.FinishAttempt{Token: 12345, To: model.AttemptFailed, FailureKind: model.FailureExitCode, Reported: true})
	wantIs(t, err, store.ErrStaleAttempt)

	// The current attempt's result applies.
	e.mustApply(
		store.FinishAttempt{Token: cur, To: model.AttemptSucceeded, ExitCode: &exit, Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 2, Token: cur, To: model.TaskSucceeded},
	)
	// Its duplicate (a resend after reconnect) is now stale: recorded once, applied once.
	err = e.apply(
		store.FinishAttempt{Token: cur, To: model.AttemptSucceeded, ExitCode: &exit, Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 2, Token: cur, To: model.TaskSucceeded},
	)
	wantIs(t, err, store.ErrStaleAttempt)
	if got := e.task(r.ID, "a"); got.State != model.TaskSucceeded || got.FinishedAt.IsZero() {
		t.Fatalf("task after result: %+v", got)
	}
}

// A stale result for an attempt the task moved on from without finishing it turns the
// attempt row STALE.
func TestStaleResultForUnfinishedAttempt(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	old := e.toRunning(r.ID, "a", model.TaskPending, 0)
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, To: model.TaskQueued})
	e.toRunning(r.ID, "a", model.TaskQueued, 1)
	err := e.apply(store.FinishAttempt{Token: old, To: model.AttemptFailed, FailureKind: model.FailureExitCode, Error: "exit 1", Reported: true})
	wantIs(t, err, store.ErrStaleAttempt)
	a, _ := e.s.GetAttempt(e.ctx, old)
	if a.State != model.AttemptStale || a.FinishedAt.IsZero() || a.StaleOutcome != "FAILED (exit_code): exit 1" {
		t.Fatalf("attempt: %+v", a)
	}
}

// A leader write that starts while a new leader's TakeLeadership is uncommitted waits for it
// (the epoch is read FOR SHARE, not from a snapshot) and then sees the new epoch.
func TestWriteWaitsForLeadershipChange(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	before := snapshot(e)
	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `UPDATE leadership SET epoch = epoch + 1, holder = 'new'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var b store.Batch
		b.Add(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskPending, To: model.TaskQueued})
		_, err := e.s.Apply(e.ctx, epoch, &b)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write under the old epoch finished (%v) while the epoch change was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	wantIs(t, <-done, store.ErrStaleEpoch)
	if after := snapshot(e); after != before {
		t.Fatal("rows changed")
	}
}

// A result reported by another worker than the attempt's (FinishAttempt.WorkerID) applies
// nothing and records nothing, whether the attempt is current or stale.
func TestResultOfAnotherWorker(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	old := e.toRunning(r.ID, "a", model.TaskPending, 0) // assigned to w1
	e.mustApply(
		store.FinishAttempt{Token: old, To: model.AttemptLost, FailureKind: model.FailureLost, Error: "lease expired"},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: old, To: model.TaskQueued},
	)
	cur := e.toRunning(r.ID, "a", model.TaskQueued, 1) // w1 again
	fingerprint := func() string {
		var s string
		if err := e.pool.QueryRow(e.ctx, `SELECT (SELECT string_agg(a::text, '|' ORDER BY id) FROM attempts a) ||
			(SELECT string_agg(t::text, '|') FROM task_runs t) || (SELECT count(*)::text FROM events)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := fingerprint()
	exit := 0
	for _, token := range []int64{cur, old} {
		err := e.apply(
			store.FinishAttempt{Token: token, To: model.AttemptSucceeded, ExitCode: &exit, Reported: true, WorkerID: "intruder"},
			store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: "a", Kind: model.EventTaskState, From: "RUNNING", To: "SUCCEEDED"}},
		)
		wantIs(t, err, store.ErrNotAssigned)
		var na *store.NotAssignedError
		if !errors.As(err, &na) || na.Assigned != "w1" || na.Worker != "intruder" {
			t.Fatalf("detail: %v", err)
		}
	}
	if after := fingerprint(); after != before {
		t.Fatalf("a result of another worker changed the database:\nbefore %s\nafter  %s", before, after)
	}
	// The right worker's result applies.
	e.mustApply(
		store.FinishAttempt{Token: cur, To: model.AttemptSucceeded, ExitCode: &exit, Reported: true, WorkerID: "w1"},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 2, Token: cur, To: model.TaskSucceeded},
	)
	if got := e.task(r.ID, "a"); got.State != model.TaskSucceeded {
		t.Fatalf("task %+v", got)
	}
}
