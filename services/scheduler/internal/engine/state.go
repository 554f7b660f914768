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
	tasks  []taskState // index = task index in wf; one allocation per run, never resized
	active int         // tasks QUEUED, ASSIGNED or RUNNING (bounded by max_active_tasks)
	// throttled holds tasks whose trigger rule says run (PENDING) or whose retry is due
	// (RETRY_WAIT) but that wait for the run's max_active_tasks to allow them.
	throttled []int
	terminal  int // tasks in a terminal state
	// deferred holds trigger-rule decisions not applied yet because their batch had spent
	// its Config.PlanChunk (see decide), in the order they were made; planning is set while
	// the run is on the engine's planQ.
	deferred []dag.Decided
	planning bool
	// errs holds, per task index, the errors of the attempts that ended under this leader
	// (for the dead letter); nil until an attempt fails.
	errs map[int][]model.AttemptError
}

// taskState is the leader's view of one task run. It is kept small (~100 bytes, stored by
// value in runState.tasks): a leader may hold hundreds of thousands of them. What the
// workflow says (id, pool, retry policy, timeout) is read from runState.wf, times are Unix
// nanoseconds (0: none).
type taskState struct {
	token     int64
	attemptID uuid.UUID // current attempt's id (zero when unknown after a failover)
	worker    string
	state     model.TaskState
	attempt   int
	nextAt    int64 // RETRY_WAIT: when the next attempt is due
	queuedAt  int64
	// startSeen: the worker reported the attempt started at this (leader) time, and the
	// start is not written yet (see Config.StartDelay); zero otherwise.
	startSeen int64
	base      int32 // attempt number the task was re-opened at; retries count from it
	lost      int32 // attempts lost with their worker
	// unconfirmed: ASSIGNED/RUNNING after a failover, not yet re-attached by its worker.
	unconfirmed bool
	queued      bool // in a worker queue or a pool backlog
	throttled   bool // in its run's throttled list
	deferred    bool // a decision about it waits in its run's deferred list
}

// unixNano returns t as Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// policy returns the retry policy of the run's task i.
func (r *runState) policy(i int) retry.Policy {
	t := r.wf.Tasks[i]
	return retry.Policy{MaxRetries: t.Retries, Initial: t.Backoff.Initial, Max: t.Backoff.Max,
		Multiplier: t.Backoff.Multiplier, Jitter: t.Backoff.Jitter}
}

// dropDeferred forgets the run's deferred decisions (the tasks stay PENDING).
func (r *runState) dropDeferred() {
	for _, d := range r.deferred {
		r.tasks[d.Task].deferred = false
	}
	r.deferred = nil
	r.planning = false
}

type taskRef struct {
	run *runState
	idx int
}

func (r taskRef) task() *taskState { return &r.run.tasks[r.idx] }

// id returns the task's id.
func (r taskRef) id() string { return r.run.wf.Tasks[r.idx].ID }

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
	if t := &r.tasks[i]; !t.throttled {
		t.throttled = true
		r.throttled = append(r.throttled, i)
	}
}

func (r *runState) outcome(i int) dag.Outcome { return outcome(r.tasks[i].state) }

func countsActive(s model.TaskState) bool {
	return s == model.TaskQueued || s == model.TaskAssigned || s == model.TaskRunning
}

func newRunState(run model.Run, wf *dag.Workflow) *runState {
	rs := &runState{run: run, wf: wf, tasks: make([]taskState, len(wf.Tasks))}
	for i := range rs.tasks {
		rs.tasks[i].state = model.TaskPending
	}
	return rs
}

// load builds a run's state from its stored rows.
func (e *Engine) load(ctx context.Context, d store.RunDetail) (*runState, error) {
	wf, err := e.cfg.Workflows.Get(ctx, d.Run.Namespace, d.Run.Workflow, d.Run.Version)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", d.Run.ID, err)
	}
	return loadWith(d, wf)
}

// loadWith builds a run's state from its stored rows and its parsed workflow.
func loadWith(d store.RunDetail, wf *dag.Workflow) (*runState, error) {
	rs := newRunState(d.Run, wf)
	seen := 0
	for _, tr := range d.Tasks {
		i, ok := wf.Graph.Index(tr.TaskID)
		if !ok {
			return nil, fmt.Errorf("run %s: stored task %q is not in workflow %s/%s v%d", d.Run.ID, tr.TaskID,
				d.Run.Namespace, d.Run.Workflow, d.Run.Version)
		}
		t := &rs.tasks[i]
		t.state, t.attempt, t.token, t.worker, t.nextAt = tr.State, tr.Attempt, tr.FencingToken, tr.WorkerID, unixNano(tr.NextAttemptAt)
		t.base = int32(tr.AttemptBase)
		t.queuedAt = unixNano(tr.UpdatedAt)
		seen++
	}
	if seen != len(wf.Tasks) {
		return nil, fmt.Errorf("run %s: %d task rows for %d tasks", d.Run.ID, seen, len(wf.Tasks))
	}
	return rs, nil
}

// rebuild loads every active run and re-derives queues, timers and unconfirmed attempts.
// Runs are read one at a time from one snapshot (store.LoadActiveFunc), so the rows of all
// active runs are never held at once; their workflows are resolved first, because the
// snapshot's transaction holds a connection that reading a version would have to wait for.
func (e *Engine) rebuild(ctx context.Context) error {
	refs, err := e.cfg.Store.ActiveVersions(ctx)
	if err != nil {
		return err
	}
	failed := map[store.VersionRef]error{} // versions that cannot be read: their runs are left
	for _, r := range refs {
		if _, err := e.cfg.Workflows.Get(ctx, r.Namespace, r.Workflow, r.Version); err != nil {
			e.log.Error("cannot read a workflow version of active runs", "namespace", r.Namespace, "workflow", r.Workflow,
				"version", r.Version, "err", err)
			failed[r] = err
		}
	}
	e.tx = &txn{}
	var later []store.RunDetail // runs of a version not resolved above (started since)
	err = e.cfg.Store.LoadActiveFunc(ctx, func(d store.RunDetail) error {
		if err := failed[store.VersionRef{Namespace: d.Run.Namespace, Workflow: d.Run.Workflow, Version: d.Run.Version}]; err != nil {
			e.rebuildRun(d, nil, err) // neither held nor read again
			return nil
		}
		wf, ok := e.cfg.Workflows.cached(d.Run.Namespace, d.Run.Workflow, d.Run.Version)
		if !ok {
			later = append(later, d)
			return nil
		}
		e.rebuildRun(d, wf, nil)
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range later {
		wf, err := e.cfg.Workflows.Get(ctx, d.Run.Namespace, d.Run.Workflow, d.Run.Version)
		e.rebuildRun(d, wf, err)
	}
	return e.commit(ctx)
}

// rebuildRun adopts one run read by rebuild, or logs why it cannot.
func (e *Engine) rebuildRun(d store.RunDetail, wf *dag.Workflow, err error) {
	var rs *runState
	if err == nil {
		rs, err = loadWith(d, wf)
	}
	if err != nil {
		// A run we cannot load must not stop the whole scheduler: log it and leave it.
		e.log.Error("cannot rebuild run; leaving it as is", "run_id", d.Run.ID, "err", err)
		return
	}
	e.adopt(rs)
}

// adopt installs a loaded run and schedules what it implies.
func (e *Engine) adopt(rs *runState) { e.adoptWith(rs, nil) }

// adoptWith is adopt with first as the first ops of the run's group (StartRun: the run's
// insert, so that the run and what its start implies are one all-or-nothing group), and
// setup, if not nil, to add effects or a failure hook to that group.
func (e *Engine) adoptWith(rs *runState, setup func(*grp), first ...store.Op) {
	e.runs[rs.run.ID] = rs
	live := e.cfg.LiveWorkers()
	now := e.cfg.Now()
	g := e.tx.group(rs.run.ID, first...)
	if setup != nil {
		setup(g)
	}
	if rs.run.State == model.RunPending {
		g.add(store.RunTransition{RunID: rs.run.ID, From: model.RunPending, To: model.RunRunning},
			runEvent(rs.run.ID, model.RunPending, model.RunRunning, ""))
		rs.run.State = model.RunRunning
	}
	for i := range rs.tasks {
		t, ref := &rs.tasks[i], taskRef{rs, i}
		if countsActive(t.state) {
			rs.active++
		}
		if t.state.Terminal() {
			rs.terminal++
		}
		switch t.state {
		case model.TaskQueued:
			e.enqueue(ref)
		case model.TaskRetryWait:
			e.timers.push(timer{at: fromUnixNano(t.nextAt), kind: timerRetry, ref: ref, attempt: t.attempt})
		case model.TaskAssigned, model.TaskRunning:
			e.tokens[t.token] = ref
			if !live[t.worker] {
				e.lose(g, ref, "worker "+t.worker+" is not registered (lease expired)")
				continue
			}
			// The leader's own deadline, from now: the start time is not in memory here, so
			// a silent worker holds the task at most one timeout (and grace) past this point.
			e.timers.push(timer{at: now.Add(rs.wf.Tasks[i].Timeout + e.cfg.AttemptGrace), kind: timerDeadline, ref: ref, token: t.token})
			if e.workers[t.worker] != nil {
				// A run reloaded while its worker's stream is attached: the worker has no
				// reason to say hello again, and its result will come on that stream. (After
				// a failover no worker is attached yet when the runs are rebuilt.)
				continue
			}
			t.unconfirmed = true
			e.timers.push(timer{at: now.Add(e.cfg.AdoptGrace), kind: timerAdopt, ref: ref, token: t.token})
		}
	}
	// Pending tasks whose trigger rules are already decided (e.g. the leader died between
	// committing a result and committing its consequences).
	e.decide(g, rs, rs.wf.Graph.Ready(rs.outcome))
	e.finishIfDone(g, rs)
	g.close()
}

// reloadRun replaces a run's in-memory state with what PostgreSQL holds.
func (e *Engine) reloadRun(ctx context.Context, ns string, id uuid.UUID) error {
	if old, ok := e.runs[id]; ok {
		e.forget(old)
	}
	d, err := e.cfg.Store.GetRun(ctx, ns, id)
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

// recountInflight sets every attached worker's count of attempts in flight from the tokens
// of the active attempts.
func (e *Engine) recountInflight() {
	for _, w := range e.workers {
		w.inflight = 0
	}
	for _, ref := range e.tokens {
		if w := e.workers[ref.task().worker]; w != nil {
			w.inflight++
		}
	}
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
