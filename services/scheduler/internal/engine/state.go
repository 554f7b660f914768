package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/retry"
	"github.com/cairn-io/cairn/pkg/store"
)

// runState is the leader's view of one active run.
type runState struct {
	run    model.Run
	wf     *dag.Workflow
	tasks  []*taskState // index = task index in wf
	active int          // tasks QUEUED, ASSIGNED or RUNNING (bounded by max_active_tasks)
	// throttled holds tasks whose trigger rule says run (PENDING) or whose retry is due
	// (RETRY_WAIT) but that wait for the run's max_active_tasks to allow them.
	throttled []int
	terminal  int // tasks in a terminal state
}

// taskState is the leader's view of one task run.
type taskState struct {
	idx       int
	id        string
	state     model.TaskState
	attempt   int
	base      int // attempt number the task was re-opened at; retries count from it
	token     int64
	worker    string
	attemptID uuid.UUID // current attempt's id (zero when unknown after a failover)
	nextAt    time.Time
	queuedAt  time.Time
	// startSeen: the worker reported the attempt started at this (leader) time, and the
	// start is not written yet (see Config.StartDelay); zero otherwise.
	startSeen time.Time
	// unconfirmed: ASSIGNED/RUNNING after a failover, not yet re-attached by its worker.
	unconfirmed bool
	queued      bool // in a worker queue or a pool backlog
	lost        int  // attempts lost with their worker
	throttled   bool // in its run's throttled list
	errors      []model.AttemptError
	policy      retry.Policy
}

type taskRef struct {
	run *runState
	idx int
}

func (r taskRef) task() *taskState { return r.run.tasks[r.idx] }

// outcome maps a task state to the DAG's trigger-rule outcome.
func outcome(s model.TaskState) dag.Outcome {
	switch s {
	case model.TaskPending:
		return dag.OutcomePending
	case model.TaskSucceeded:
		return dag.OutcomeSucceeded
	case model.TaskFailed, model.TaskDeadLettered:
		return dag.OutcomeFailed
	case model.TaskUpstreamFailed:
		return dag.OutcomeUpstreamFailed
	case model.TaskSkipped:
		return dag.OutcomeSkipped
	case model.TaskCancelled:
		return dag.OutcomeCancelled
	default:
		return dag.OutcomeActive
	}
}

// throttle puts task i on the run's throttled list (once).
func (r *runState) throttle(i int) {
	if t := r.tasks[i]; !t.throttled {
		t.throttled = true
		r.throttled = append(r.throttled, i)
	}
}

func (r *runState) outcome(i int) dag.Outcome { return outcome(r.tasks[i].state) }

func countsActive(s model.TaskState) bool {
	return s == model.TaskQueued || s == model.TaskAssigned || s == model.TaskRunning
}

func newRunState(run model.Run, wf *dag.Workflow) *runState {
	rs := &runState{run: run, wf: wf, tasks: make([]*taskState, len(wf.Tasks))}
	for i, t := range wf.Tasks {
		rs.tasks[i] = &taskState{
			idx: i, id: t.ID, state: model.TaskPending,
			policy: retry.Policy{MaxRetries: t.Retries, Initial: t.Backoff.Initial, Max: t.Backoff.Max,
				Multiplier: t.Backoff.Multiplier, Jitter: t.Backoff.Jitter},
		}
	}
	return rs
}

// load builds a run's state from its stored rows.
func (e *Engine) load(ctx context.Context, d store.RunDetail) (*runState, error) {
	wf, err := e.cfg.Workflows.Get(ctx, d.Run.Workflow, d.Run.Version)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", d.Run.ID, err)
	}
	rs := newRunState(d.Run, wf)
	seen := 0
	for _, tr := range d.Tasks {
		i, ok := wf.Graph.Index(tr.TaskID)
		if !ok {
			return nil, fmt.Errorf("run %s: stored task %q is not in workflow %s v%d", d.Run.ID, tr.TaskID, d.Run.Workflow, d.Run.Version)
		}
		t := rs.tasks[i]
		t.state, t.attempt, t.token, t.worker, t.nextAt = tr.State, tr.Attempt, tr.FencingToken, tr.WorkerID, tr.NextAttemptAt
		t.base = tr.AttemptBase
		t.queuedAt = tr.UpdatedAt
		seen++
	}
	if seen != len(wf.Tasks) {
		return nil, fmt.Errorf("run %s: %d task rows for %d tasks", d.Run.ID, seen, len(wf.Tasks))
	}
	return rs, nil
}

// rebuild loads every active run and re-derives queues, timers and unconfirmed attempts.
func (e *Engine) rebuild(ctx context.Context) error {
	details, err := e.cfg.Store.LoadActive(ctx)
	if err != nil {
		return err
	}
	e.tx = &txn{}
	for _, d := range details {
		rs, err := e.load(ctx, d)
		if err != nil {
			// A run we cannot load must not stop the whole scheduler: log it and leave it.
			e.log.Error("cannot rebuild run; leaving it as is", "run_id", d.Run.ID, "err", err)
			continue
		}
		e.adopt(rs)
	}
	return e.commit(ctx)
}

// adopt installs a loaded run and schedules what it implies.
func (e *Engine) adopt(rs *runState) {
	e.runs[rs.run.ID] = rs
	live := e.cfg.LiveWorkers()
	now := e.cfg.Now()
	g := e.tx.group(rs.run.ID)
	if rs.run.State == model.RunPending {
		g.add(store.RunTransition{RunID: rs.run.ID, From: model.RunPending, To: model.RunRunning},
			runEvent(rs.run.ID, model.RunPending, model.RunRunning, ""))
		rs.run.State = model.RunRunning
	}
	for _, t := range rs.tasks {
		if countsActive(t.state) {
			rs.active++
		}
		if t.state.Terminal() {
			rs.terminal++
		}
		switch t.state {
		case model.TaskQueued:
			e.enqueue(taskRef{rs, t.idx})
		case model.TaskRetryWait:
			e.timers.push(timer{at: t.nextAt, kind: timerRetry, ref: taskRef{rs, t.idx}, attempt: t.attempt})
		case model.TaskAssigned, model.TaskRunning:
			e.tokens[t.token] = taskRef{rs, t.idx}
			if !live[t.worker] {
				e.lose(g, taskRef{rs, t.idx}, "worker "+t.worker+" is not registered (lease expired)")
				continue
			}
			t.unconfirmed = true
			e.timers.push(timer{at: now.Add(e.cfg.AdoptGrace), kind: timerAdopt, ref: taskRef{rs, t.idx}, token: t.token})
		}
	}
	// Pending tasks whose trigger rules are already decided (e.g. the leader died between
	// committing a result and committing its consequences).
	e.decide(g, rs, rs.wf.Graph.Ready(rs.outcome))
	e.finishIfDone(g, rs)
	g.close()
}

// reloadRun replaces a run's in-memory state with what PostgreSQL holds.
func (e *Engine) reloadRun(ctx context.Context, id uuid.UUID) error {
	if old, ok := e.runs[id]; ok {
		e.forget(old)
	}
	d, err := e.cfg.Store.GetRun(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reload run %s: %w", id, err)
	}
	if d.Run.State.Terminal() {
		return nil
	}
	rs, err := e.load(ctx, d)
	if err != nil {
		e.log.Error("cannot reload run", "run_id", id, "err", err)
		return nil
	}
	e.tx = &txn{}
	e.adopt(rs)
	return e.commit(ctx)
}

// forget drops a run from memory: its tokens, and (lazily) its queue entries.
func (e *Engine) forget(rs *runState) {
	for _, t := range rs.tasks {
		if t.token != 0 {
			if ref, ok := e.tokens[t.token]; ok && ref.run == rs {
				delete(e.tokens, t.token)
			}
		}
	}
	delete(e.runs, rs.run.ID)
}
