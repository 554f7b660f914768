package store_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// A run retry re-opens a dead-lettered task: its attempt base moves to its attempt number,
// its open dead letter is closed, and attempt numbers keep counting.
func TestReopenResetsAttemptBaseAndClosesDeadLetter(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	token := e.toRunning(r.ID, "a", model.TaskPending, 0)
	dl := model.DeadLetter{ID: uuid.New(), RunID: r.ID, TaskID: "a", Workflow: "wf",
		Errors: []model.AttemptError{{Attempt: 1, FailureKind: model.FailureExitCode, Error: "exit 1"}}}
	e.mustApply(
		store.FinishAttempt{Token: token, To: model.AttemptFailed, FailureKind: model.FailureExitCode, Error: "exit 1", Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: token, To: model.TaskDeadLettered, Error: "exit 1"},
		store.InsertDeadLetter{DeadLetter: dl},
	)
	open, err := e.s.OpenDeadLetters(e.ctx, defNS, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open["a"] != dl.ID {
		t.Fatalf("open dead letters = %v, want a → %s", open, dl.ID)
	}
	if got := e.task(r.ID, "a").AttemptBase; got != 0 {
		t.Fatalf("attempt base before reopening = %d", got)
	}
	e.mustApply(
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskDeadLettered, Attempt: 1, To: model.TaskPending, ResetBase: true},
		store.MarkReplayed{ID: dl.ID},
	)
	tr := e.task(r.ID, "a")
	if tr.State != model.TaskPending || tr.Attempt != 1 || tr.AttemptBase != 1 || !tr.FinishedAt.IsZero() {
		t.Fatalf("reopened task = %+v, want PENDING, attempt 1, base 1, not finished", tr)
	}
	if open, _ := e.s.OpenDeadLetters(e.ctx, defNS, r.ID); len(open) != 0 {
		t.Fatalf("dead letter still open after reopening: %v", open)
	}
	// The next attempt is number 2; the base stays.
	e.toRunning(r.ID, "a", model.TaskPending, 1)
	if tr := e.task(r.ID, "a"); tr.Attempt != 2 || tr.AttemptBase != 1 {
		t.Fatalf("after the next assignment: attempt %d base %d, want 2 and 1", tr.Attempt, tr.AttemptBase)
	}
	// An assignment cannot reset the base.
	var b store.Batch
	b.Add(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskQueued, Attempt: 2, To: model.TaskAssigned,
		ResetBase: true, Assign: &store.Assignment{Token: 99, WorkerID: "w"}})
	_, err = e.s.Apply(e.ctx, epoch, &b)
	wantIs(t, err, store.ErrInvalidArgument)
}

func TestDeleteDeadLetter(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskPending, Attempt: 0, To: model.TaskQueued})
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskQueued, Attempt: 0, To: model.TaskFailed, Error: "x"})
	dl := model.DeadLetter{ID: uuid.New(), RunID: r.ID, TaskID: "a", Workflow: "wf"}
	e.mustApply(store.InsertDeadLetter{DeadLetter: dl})
	e.mustApply(store.DeleteDeadLetter{Namespace: defNS, ID: dl.ID})
	if _, err := e.s.GetDeadLetter(e.ctx, defNS, dl.ID); err == nil {
		t.Fatal("dead letter still there after delete")
	}
	wantIs(t, e.apply(store.DeleteDeadLetter{Namespace: defNS, ID: dl.ID}), store.ErrConflict)
	if tr := e.task(r.ID, "a"); tr.State != model.TaskFailed {
		t.Fatalf("task changed by the purge: %s", tr.State)
	}
}
