package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const epoch = 7

type env struct {
	t    testing.TB
	ctx  context.Context
	pool *pgxpool.Pool
	s    *store.Store
}

// newEnv returns a store on a fresh database whose leader epoch is `epoch`.
func newEnv(t testing.TB) *env {
	t.Helper()
	pool := pgtest.NewPool(t)
	e := &env{t: t, ctx: context.Background(), pool: pool, s: store.New(pool)}
	if _, err := e.s.TakeLeadership(e.ctx, epoch, "test-leader"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) workflow(name string) model.WorkflowVersion {
	e.t.Helper()
	v, _, err := e.s.PutVersion(e.ctx, epoch, defNS, name, "test workflow", "name: "+name+"\n", []byte(`{"tasks":[]}`))
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// run creates a run of workflow (which must exist) with the given tasks.
func (e *env) run(workflow string, tasks ...string) model.Run {
	e.t.Helper()
	r, created, err := e.s.CreateRun(e.ctx, epoch, model.Run{
		ID: uuid.New(), Namespace: defNS, Workflow: workflow, Version: 1, Trigger: model.TriggerManual,
		Params: map[string]string{"day": "2026-01-01"},
	}, tasks)
	if err != nil || !created {
		e.t.Fatalf("create run: created=%v err=%v", created, err)
	}
	return r
}

// apply applies ops as one group and returns the group's outcome; a transaction error fails
// the test.
func (e *env) apply(ops ...store.Op) error {
	e.t.Helper()
	var b store.Batch
	b.Add(ops...)
	res, err := e.s.Apply(e.ctx, epoch, &b)
	if err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	return res[0]
}

func (e *env) mustApply(ops ...store.Op) {
	e.t.Helper()
	if err := e.apply(ops...); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

func (e *env) task(runID uuid.UUID, taskID string) model.TaskRun {
	e.t.Helper()
	d, err := e.s.GetRun(e.ctx, defNS, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range d.Tasks {
		if t.TaskID == taskID {
			return t
		}
	}
	e.t.Fatalf("task %s not in run %s", taskID, runID)
	return model.TaskRun{}
}

// toRunning moves a PENDING task through QUEUED and ASSIGNED to RUNNING with attempt n's
// token, returning the token.
func (e *env) toRunning(runID uuid.UUID, taskID string, from model.TaskState, attempt int) int64 {
	e.t.Helper()
	if from == model.TaskPending {
		e.mustApply(store.TaskTransition{RunID: runID, TaskID: taskID, From: from, Attempt: attempt, To: model.TaskQueued})
	}
	token := epoch<<32 | int64(tokenSeq.Add(1))
	e.mustApply(
		store.TaskTransition{RunID: runID, TaskID: taskID, From: model.TaskQueued, Attempt: attempt, To: model.TaskAssigned,
			Assign: &store.Assignment{Token: token, WorkerID: "w1"}},
		store.InsertAttempt{ID: uuid.New(), RunID: runID, TaskID: taskID, Number: attempt + 1, Token: token, WorkerID: "w1"},
	)
	e.mustApply(
		store.TaskTransition{RunID: runID, TaskID: taskID, From: model.TaskAssigned, Attempt: attempt + 1, Token: token, To: model.TaskRunning},
		store.StartAttempt{Token: token, DeadlineAt: time.Now().Add(time.Hour)},
	)
	return token
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func count(e *env, sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// snapshot dumps every row of the tables the leader writes, for before/after comparisons.
func snapshot(e *env) string {
	e.t.Helper()
	var out string
	for _, q := range []string{
		`SELECT coalesce(string_agg(n::text, E'\n' ORDER BY name), '') FROM namespaces n`,
		`SELECT coalesce(string_agg(w::text, E'\n' ORDER BY namespace, name), '') FROM workflows w`,
		`SELECT coalesce(string_agg(v::text, E'\n' ORDER BY namespace, workflow, version), '') FROM workflow_versions v`,
		`SELECT coalesce(string_agg(r::text, E'\n' ORDER BY id), '') FROM runs r`,
		`SELECT coalesce(string_agg(t::text, E'\n' ORDER BY run_id, task_id), '') FROM task_runs t`,
		`SELECT coalesce(string_agg(a::text, E'\n' ORDER BY id), '') FROM attempts a`,
		`SELECT coalesce(string_agg(d::text, E'\n' ORDER BY id), '') FROM dead_letters d`,
		`SELECT coalesce(string_agg(ev::text, E'\n' ORDER BY seq), '') FROM events ev`,
		`SELECT coalesce(string_agg(s::text, E'\n' ORDER BY namespace, workflow), '') FROM schedules s`,
	} {
		var s string
		if err := e.pool.QueryRow(e.ctx, q).Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out += fmt.Sprintf("%s\n--\n", s)
	}
	return out
}

var tokenSeq atomic.Int64

// defNS is the namespace the tests write in unless they test namespaces.
const defNS = model.DefaultNamespace
