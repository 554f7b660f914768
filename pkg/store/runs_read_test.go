package store_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// referenceTasks reads a run's task runs with plain pgx scanning, column by column: what
// GetRun's in-place scanner must reproduce.
func referenceTasks(e *env, run uuid.UUID) []model.TaskRun {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT run_id, task_id, state, attempt, fencing_token, worker_id, next_attempt_at,
		last_error, created_at, updated_at, started_at, finished_at, attempt_base FROM task_runs WHERE run_id = $1
		ORDER BY task_id`, run.String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []model.TaskRun
	for rows.Next() {
		var t model.TaskRun
		var runID, state string
		var next, started, finished *time.Time
		if err := rows.Scan(&runID, &t.TaskID, &state, &t.Attempt, &t.FencingToken, &t.WorkerID, &next, &t.LastError,
			&t.CreatedAt, &t.UpdatedAt, &started, &finished, &t.AttemptBase); err != nil {
			e.t.Fatal(err)
		}
		t.RunID, t.State = uuid.MustParse(runID), model.TaskState(state)
		for _, p := range []struct {
			src *time.Time
			dst *time.Time
		}{{next, &t.NextAttemptAt}, {started, &t.StartedAt}, {finished, &t.FinishedAt}} {
			if p.src != nil {
				*p.dst = *p.src
			}
		}
		out = append(out, norm(t))
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// norm puts every time in UTC, so that values read by different paths compare equal.
func norm(t model.TaskRun) model.TaskRun {
	for _, p := range []*time.Time{&t.NextAttemptAt, &t.CreatedAt, &t.UpdatedAt, &t.StartedAt, &t.FinishedAt} {
		*p = p.UTC()
	}
	return t
}

func normAll(ts []model.TaskRun) []model.TaskRun {
	out := make([]model.TaskRun, len(ts))
	for i, t := range ts {
		out[i] = norm(t)
	}
	return out
}

// runWithEveryField makes a run whose task runs, between them, set every column: PENDING,
// QUEUED, RUNNING (token, worker, started_at), RETRY_WAIT (next_attempt_at, last_error),
// SUCCEEDED (finished_at) and one re-opened with a fresh attempt base.
func runWithEveryField(e *env) model.Run {
	e.t.Helper()
	r := e.run("wf", "a-pending", "b-queued", "c-running", "d-retry", "e-done", "f-reopened")
	e.mustApply(store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunRunning})
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "b-queued", From: model.TaskPending, To: model.TaskQueued})
	e.toRunning(r.ID, "c-running", model.TaskPending, 0)
	tok := e.toRunning(r.ID, "d-retry", model.TaskPending, 0)
	e.mustApply(
		store.FinishAttempt{Token: tok, To: model.AttemptFailed, FailureKind: model.FailureExitCode, Error: "exit 1", Reported: true},
		store.TaskTransition{RunID: r.ID, TaskID: "d-retry", From: model.TaskRunning, Attempt: 1, Token: tok, To: model.TaskRetryWait,
			NextAttemptAt: time.Now().Add(time.Minute), Error: "exit 1"})
	for _, id := range []string{"e-done", "f-reopened"} {
		tok := e.toRunning(r.ID, id, model.TaskPending, 0)
		e.mustApply(
			store.FinishAttempt{Token: tok, To: model.AttemptSucceeded, Reported: true},
			store.TaskTransition{RunID: r.ID, TaskID: id, From: model.TaskRunning, Attempt: 1, Token: tok, To: model.TaskSucceeded})
	}
	e.mustApply(store.TaskTransition{RunID: r.ID, TaskID: "f-reopened", From: model.TaskSucceeded, Attempt: 1, To: model.TaskPending, ResetBase: true})
	return r
}

func TestGetRunReadsEveryColumn(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := runWithEveryField(e)
	d, err := e.s.GetRun(e.ctx, defNS, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := referenceTasks(e, r.ID)
	if got := normAll(d.Tasks); !reflect.DeepEqual(got, want) {
		t.Fatalf("GetRun tasks differ from a plain read:\n got %+v\nwant %+v", got, want)
	}
	if len(d.Tasks) != 6 || cap(d.Tasks) != 6 {
		t.Errorf("tasks len %d cap %d, want 6 and 6 (sized from the count)", len(d.Tasks), cap(d.Tasks))
	}
	// Every column was exercised (a column scanned into the wrong field would show here).
	byID := map[string]model.TaskRun{}
	for _, tr := range d.Tasks {
		byID[tr.TaskID] = tr
	}
	if c := byID["c-running"]; c.State != model.TaskRunning || c.FencingToken == 0 || c.WorkerID != "w1" || c.StartedAt.IsZero() || c.Attempt != 1 {
		t.Errorf("running task: %+v", c)
	}
	if d := byID["d-retry"]; d.State != model.TaskRetryWait || d.NextAttemptAt.IsZero() || d.LastError != "exit 1" {
		t.Errorf("retry-waiting task: %+v", d)
	}
	if f := byID["e-done"]; f.State != model.TaskSucceeded || f.FinishedAt.IsZero() {
		t.Errorf("finished task: %+v", f)
	}
	if f := byID["f-reopened"]; f.State != model.TaskPending || f.AttemptBase != 1 {
		t.Errorf("re-opened task: %+v", f)
	}
}

func TestLoadActiveFuncOneRunAtATime(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	first := runWithEveryField(e)
	done := e.run("wf", "z")
	e.mustApply(store.RunTransition{RunID: done.ID, From: model.RunPending, To: model.RunCancelled},
		store.TaskTransition{RunID: done.ID, TaskID: "z", From: model.TaskPending, To: model.TaskCancelled})
	second := e.run("wf", "y", "x")
	third := e.run("wf", "w")

	var seen []string
	err := e.s.LoadActiveFunc(e.ctx, func(d store.RunDetail) error {
		seen = append(seen, d.Run.ID.String())
		if want := referenceTasks(e, d.Run.ID); !reflect.DeepEqual(normAll(d.Tasks), want) {
			t.Errorf("run %s: tasks differ from a plain read:\n got %+v\nwant %+v", d.Run.ID, normAll(d.Tasks), want)
		}
		if cap(d.Tasks) != len(d.Tasks) {
			t.Errorf("run %s: tasks len %d cap %d, want them equal (sized from the count)", d.Run.ID, len(d.Tasks), cap(d.Tasks))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{first.ID.String(), second.ID.String(), third.ID.String()}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("runs %v, want the active ones oldest first %v", seen, want)
	}

	// An error from fn stops the read and comes back.
	stop := errors.New("stop")
	calls := 0
	err = e.s.LoadActiveFunc(e.ctx, func(store.RunDetail) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn error: got %v after %d calls, want stop after 1", err, calls)
	}
}

func TestNewRunDetailIsWhatGetRunReads(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	ids := []string{"c", "a", "b"}
	r, created, err := e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf",
		Version: 1, Trigger: model.TriggerManual}, ids)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	d, err := e.s.GetRun(e.ctx, defNS, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := store.NewRunDetail(r, ids)
	if !reflect.DeepEqual(normAll(got.Tasks), normAll(d.Tasks)) {
		t.Fatalf("NewRunDetail tasks\n %+v\ndiffer from GetRun's\n %+v", got.Tasks, d.Tasks)
	}
	if got.Run.ID != d.Run.ID || got.Run.State != d.Run.State || !got.Run.CreatedAt.Equal(d.Run.CreatedAt) {
		t.Fatalf("NewRunDetail run %+v, GetRun %+v", got.Run, d.Run)
	}
	if ids[0] != "c" {
		t.Fatal("NewRunDetail sorted the caller's slice")
	}
}

// A task state the model does not know (the CHECK constraint forbids one; here it is
// dropped) is an error naming the value, not a state passed on.
func TestUnknownTaskStateIsAnError(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a", "b")
	if _, err := e.pool.Exec(e.ctx, `ALTER TABLE task_runs DROP CONSTRAINT task_runs_state_check`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(e.ctx, `UPDATE task_runs SET state = 'BOGUS' WHERE run_id = $1 AND task_id = 'b'`, r.ID.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetRun(e.ctx, defNS, r.ID); err == nil || !strings.Contains(err.Error(), `"BOGUS"`) || !strings.Contains(err.Error(), "/b") {
		t.Fatalf("GetRun: %v, want an error naming task b and the state BOGUS", err)
	}
	err := e.s.LoadActiveFunc(e.ctx, func(store.RunDetail) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `"BOGUS"`) {
		t.Fatalf("LoadActiveFunc: %v, want an error naming the state BOGUS", err)
	}
}
