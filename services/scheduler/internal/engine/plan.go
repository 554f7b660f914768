package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// maxLost bounds how often a task may lose its worker before the loss counts as a failed
// attempt (a task that crashes every worker it lands on must not loop forever).
const maxLost = 3

// decide applies trigger-rule decisions (from Graph.Ready or Graph.Affected) to a run.
//
// At most Config.PlanChunk decisions are applied per batch (one transaction): the rest wait,
// in order, on the run's deferred list and are applied by the next batches (planDeferred).
// A huge run therefore starts in bounded chunks instead of one transaction of 10,000+ task
// transitions. A deferred task is still PENDING in memory and in PostgreSQL, which is a state
// the rebuild after a failover handles already (Graph.Ready decides it again).
func (e *Engine) decide(g *grp, rs *runState, ds []dag.Decided) {
	for _, d := range ds {
		t := &rs.tasks[d.Task]
		if t.state != model.TaskPending || t.deferred {
			continue
		}
		if len(rs.deferred) > 0 || e.tx.planned >= e.cfg.PlanChunk {
			// Keep the order: a decision may follow from one before it (a skip cascade).
			t.deferred = true
			rs.deferred = append(rs.deferred, d)
			if !rs.planning {
				rs.planning = true
				e.planQ = append(e.planQ, rs)
			}
			continue
		}
		e.applyDecision(g, rs, d)
	}
}

// applyDecision applies one trigger-rule decision about a PENDING task.
func (e *Engine) applyDecision(g *grp, rs *runState, d dag.Decided) {
	switch d.Decision {
	case dag.Run:
		if rs.wf.MaxActiveTasks > 0 && rs.active >= rs.wf.MaxActiveTasks {
			rs.throttle(d.Task)
			return
		}
		e.tx.planned++
		e.queueTask(g, taskRef{rs, d.Task}, "")
	case dag.Skip:
		e.tx.planned++
		e.setTerminal(g, rs, d.Task, model.TaskSkipped, "trigger rule "+string(rs.wf.Tasks[d.Task].TriggerRule)+" decided skip")
	case dag.UpstreamFailed:
		e.tx.planned++
		e.setTerminal(g, rs, d.Task, model.TaskUpstreamFailed, "an upstream task failed")
	}
}

// planDeferred applies deferred decisions, oldest run first, while this batch's PlanChunk
// allows. Each run's share is one group, which also finishes the run if that was its last
// undecided work.
func (e *Engine) planDeferred() {
	for len(e.planQ) > 0 && e.tx.planned < e.cfg.PlanChunk {
		rs := e.planQ[0]
		if e.runs[rs.run.ID] == rs && len(rs.deferred) > 0 {
			g := e.tx.group(rs.run.ID)
			n := 0
			for n < len(rs.deferred) && e.tx.planned < e.cfg.PlanChunk {
				d := rs.deferred[n]
				n++
				t := &rs.tasks[d.Task]
				t.deferred = false
				if t.state == model.TaskPending {
					e.applyDecision(g, rs, d)
				}
			}
			rs.deferred = rs.deferred[n:]
			if len(rs.deferred) == 0 {
				e.finishIfDone(g, rs)
			}
			g.close()
			if len(rs.deferred) > 0 {
				return // the budget is spent; this run goes on first next time
			}
		}
		rs.dropDeferred()
		e.planQ[0] = nil
		e.planQ = e.planQ[1:]
	}
	if len(e.planQ) == 0 {
		e.planQ = nil
	}
}

// queueTask moves a PENDING or RETRY_WAIT task to QUEUED and routes it.
func (e *Engine) queueTask(g *grp, ref taskRef, msg string) {
	rs, t, id := ref.run, ref.task(), ref.id()
	from := t.state
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: from, Attempt: t.attempt, To: model.TaskQueued},
		taskEvent(rs.run.ID, id, from, model.TaskQueued, t.attempt, msg))
	t.state, t.nextAt, t.queuedAt = model.TaskQueued, 0, e.cfg.Now().UnixNano()
	rs.active++
	e.enqueue(ref)
}

// setTerminal moves a task without an active attempt to a terminal state.
func (e *Engine) setTerminal(g *grp, rs *runState, i int, to model.TaskState, msg string) {
	t, id := &rs.tasks[i], rs.wf.Tasks[i].ID
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: t.state, Attempt: t.attempt, To: to, Error: errIf(to, msg)},
		taskEvent(rs.run.ID, id, t.state, to, t.attempt, msg))
	if countsActive(t.state) {
		rs.active--
	}
	t.state = to
	rs.terminal++
}

func errIf(to model.TaskState, msg string) string {
	if to == model.TaskUpstreamFailed || to == model.TaskFailed {
		return msg
	}
	return ""
}

// release queues throttled tasks while the run's max_active_tasks allows.
func (e *Engine) release(g *grp, rs *runState) {
	for len(rs.throttled) > 0 && (rs.wf.MaxActiveTasks == 0 || rs.active < rs.wf.MaxActiveTasks) {
		i := rs.throttled[0]
		rs.throttled = rs.throttled[1:]
		rs.tasks[i].throttled = false
		if s := rs.tasks[i].state; s == model.TaskPending || s == model.TaskRetryWait {
			e.queueTask(g, taskRef{rs, i}, "")
		}
	}
}

// afterTerminal propagates a task's terminal outcome downstream and finishes the run if
// everything is done.
func (e *Engine) afterTerminal(g *grp, ref taskRef) {
	rs := ref.run
	e.decide(g, rs, rs.wf.Graph.Affected(ref.idx, rs.outcome))
	e.release(g, rs)
	e.finishIfDone(g, rs)
}

// finishIfDone ends the run when every task is terminal: FAILED if any task failed,
// dead-lettered or was upstream-failed, SUCCEEDED otherwise (skipped tasks are fine).
func (e *Engine) finishIfDone(g *grp, rs *runState) {
	if rs.terminal < len(rs.tasks) || rs.run.State != model.RunRunning {
		return
	}
	to, msg := model.RunSucceeded, ""
	var failed []string
	for i := range rs.tasks {
		switch rs.tasks[i].state {
		case model.TaskFailed, model.TaskDeadLettered, model.TaskUpstreamFailed:
			failed = append(failed, rs.wf.Tasks[i].ID)
		}
	}
	if len(failed) > 0 {
		to = model.RunFailed
		msg = fmt.Sprintf("%d task(s) did not succeed: %s", len(failed), summarize(failed))
	}
	g.add(store.RunTransition{RunID: rs.run.ID, From: model.RunRunning, To: to, Error: msg},
		runEvent(rs.run.ID, model.RunRunning, to, msg))
	rs.run.State = to
	g.then(func() {
		e.cfg.Metrics.RunFinished(string(to))
		if e.runs[rs.run.ID] == rs {
			e.forget(rs)
		}
	})
}

func summarize(ids []string) string {
	if len(ids) > 5 {
		return fmt.Sprintf("%v and %d more", ids[:5], len(ids)-5)
	}
	return fmt.Sprint(ids)
}

// ---------------------------------------------------------------------------------------
// Runs: plan a new one, cancel one.

type planRun struct {
	run model.Run
	wf  *dag.Workflow
}

func (in planRun) handle(e *Engine) {
	if _, ok := e.runs[in.run.ID]; ok || in.run.State.Terminal() {
		return
	}
	e.adopt(newRunState(in.run, in.wf))
}

// PlanRun hands a run just created in PostgreSQL (state PENDING, every task PENDING) to the
// engine, which starts it. It returns once the engine has the run; the run is durable
// already, so a leader that dies now leaves it to the next one's rebuild.
func (e *Engine) PlanRun(ctx context.Context, run model.Run, wf *dag.Workflow) error {
	return e.send(ctx, planRun{run: run, wf: wf})
}

type startRun struct {
	run     model.Run
	taskIDs []string
	wf      *dag.Workflow
	reply   chan error
}

func (in startRun) handle(e *Engine) {
	if _, ok := e.runs[in.run.ID]; ok {
		e.tx.after = append(e.tx.after, func() {
			in.reply <- fmt.Errorf("start run %s: the engine already has a run with this id", in.run.ID)
		})
		return
	}
	run := in.run
	run.State = model.RunPending
	rs := newRunState(run, in.wf)
	e.adoptWith(rs, func(g *grp) {
		g.then(func() { in.reply <- nil })
		g.failed(func(err error) { in.reply <- err }) // the group fails: the run is reloaded (not found) and dropped
	}, store.InsertRun{Run: run, TaskIDs: in.taskIDs})
}

// StartRun creates a run (its row and one PENDING row per task) and starts it in the
// leader's group commit: the insert, the run's move to RUNNING and its first decisions are one
// all-or-nothing group, written by the transaction that also carries whatever else the
// leader commits. It returns nil once that is durable, or the group's error: a
// *store.ConflictError (store.ErrConflict) when the run's idempotency key or id is taken —
// then nothing of the run was written — or an error of the call (ErrNotLeader, ctx).
func (e *Engine) StartRun(ctx context.Context, run model.Run, taskIDs []string, wf *dag.Workflow) error {
	reply := make(chan error, 1)
	err, callErr := call(ctx, e, startRun{run: run, taskIDs: taskIDs, wf: wf, reply: reply}, reply)
	if callErr != nil {
		return callErr
	}
	return err
}

type cancelRun struct {
	ns     string
	id     uuid.UUID
	reason string
	reply  chan error
}

// ErrTerminal is returned when cancelling a run that already ended.
var ErrTerminal = errors.New("engine: run already ended")

func (in cancelRun) handle(e *Engine) {
	rs, ok := e.runs[in.id]
	if !ok || rs.run.Namespace != in.ns { // a run of another namespace is not one the caller can see
		e.tx.after = append(e.tx.after, func() { in.reply <- ErrTerminal })
		return
	}
	g := e.tx.group(rs.run.ID)
	msg := "run cancelled"
	if in.reason != "" {
		msg += ": " + in.reason
	}
	var cancels []func()
	rs.dropDeferred() // its tasks are cancelled below
	for i := range rs.tasks {
		t := &rs.tasks[i]
		switch t.state {
		case model.TaskPending, model.TaskQueued, model.TaskRetryWait:
			e.setTerminal(g, rs, i, model.TaskCancelled, msg)
		case model.TaskAssigned, model.TaskRunning:
			e.writeStart(g, taskRef{rs, i})
			g.add(store.FinishAttempt{RunID: rs.run.ID, TaskID: rs.wf.Tasks[i].ID, Token: t.token, To: model.AttemptCancelled, FailureKind: model.FailureCancelled, Error: msg})
			token, worker, attemptID := t.token, t.worker, t.attemptID
			delete(e.tokens, t.token)
			if w := e.workers[worker]; w != nil {
				w.inflight--
			}
			e.setTerminal(g, rs, i, model.TaskCancelled, msg)
			cancels = append(cancels, func() { e.sendCancel(worker, attemptID, token, msg) })
		}
	}
	for _, i := range rs.throttled {
		rs.tasks[i].throttled = false
	}
	rs.throttled = nil
	g.add(store.RunTransition{RunID: rs.run.ID, From: rs.run.State, To: model.RunCancelled, Error: msg},
		runEvent(rs.run.ID, rs.run.State, model.RunCancelled, msg))
	rs.run.State = model.RunCancelled
	for _, f := range cancels {
		g.then(f)
	}
	g.then(func() {
		e.cfg.Metrics.RunFinished(string(model.RunCancelled))
		if e.runs[rs.run.ID] == rs {
			e.forget(rs)
		}
		in.reply <- nil
	})
	g.failed(func(err error) { in.reply <- fmt.Errorf("cancel run %s: %w", in.id, err) })
	g.close()
}

// CancelRun cancels an active run of namespace ns: unfinished tasks become CANCELLED and
// running attempts are told to stop. It returns once that is durable, or ErrTerminal if the
// engine holds no such active run (it ended, does not exist or is of another namespace).
func (e *Engine) CancelRun(ctx context.Context, ns string, id uuid.UUID, reason string) error {
	reply := make(chan error, 1)
	err, callErr := call(ctx, e, cancelRun{ns: ns, id: id, reason: reason, reply: reply}, reply)
	if callErr != nil {
		return callErr
	}
	return err
}

// ---------------------------------------------------------------------------------------
// Attempt outcomes.

// Result is a worker's report of one attempt.
type Result struct {
	ResultID        string
	AttemptID       string
	Token           int64
	Succeeded       bool
	FailureKind     model.FailureKind
	ExitCode        *int
	HTTPStatus      *int
	Output          []byte
	OutputTruncated bool
	Error           string
	// NoRetry: the failure would recur on every attempt (the worker's egress policy refused
	// the destination), so the task FAILS now, its retries unused and no dead letter made.
	NoRetry  bool
	Started  time.Time
	Finished time.Time
}

// applyResult handles a worker's result for the attempt with res.Token. It returns whether
// the result was current; stale results are recorded as such by the store.
func (e *Engine) applyResult(g *grp, res Result, workerID string) bool {
	res.Error = cleanText(res.Error)
	ref, ok := e.tokens[res.Token]
	fin := store.FinishAttempt{Token: res.Token, FailureKind: res.FailureKind, ExitCode: res.ExitCode,
		HTTPStatus: res.HTTPStatus, Output: res.Output, OutputTruncated: res.OutputTruncated, Error: res.Error, Reported: true}
	if res.Succeeded {
		fin.To, fin.FailureKind = model.AttemptSucceeded, model.FailureNone
	} else {
		fin.To = model.AttemptFailed
		if fin.FailureKind == model.FailureNone || !fin.FailureKind.Valid() {
			fin.FailureKind = model.FailureInternal
		}
		if fin.FailureKind == model.FailureCancelled {
			fin.To = model.AttemptCancelled
		}
	}
	if !ok || ref.task().token != res.Token || !ref.task().state.Active() {
		// Stale: the store records it on the attempt row and reports ErrStaleAttempt — unless
		// the attempt is another worker's (ErrNotAssigned, nothing recorded).
		fin.WorkerID = workerID
		g.add(fin)
		return false
	}
	t := ref.task()
	t.unconfirmed = false
	fin.RunID, fin.TaskID = ref.run.run.ID, ref.id() // lets the store batch it with others
	e.writeStart(g, ref)                             // a start still in memory goes first, in the same group
	delete(e.tokens, res.Token)
	if w := e.workers[t.worker]; w != nil && t.worker == workerID {
		w.inflight--
	}
	e.cfg.Metrics.AttemptFinished(string(fin.To))
	if res.Succeeded {
		g.add(fin)
		e.finishTask(g, ref, model.TaskSucceeded, "")
		return true
	}
	if fin.FailureKind == model.FailureCancelled {
		// The worker gave the attempt back (drain timeout, shutdown): not the task's fault.
		g.add(fin)
		e.requeue(g, ref, "attempt cancelled by its worker: "+res.Error)
		return true
	}
	g.add(fin)
	if res.NoRetry {
		// Not the attempt's bad luck: the worker refuses what the task asks. A run retry
		// re-runs the task once the configuration allows it.
		e.finishTask(g, ref, model.TaskFailed, res.Error)
		return true
	}
	e.failAttempt(g, ref, fin.FailureKind, res.Error)
	return true
}

// maxErrorBytes bounds the error text stored per attempt.
const maxErrorBytes = 8 << 10

// cleanText makes worker-supplied text storable: valid UTF-8, no NUL bytes (PostgreSQL text
// cannot hold them), bounded length.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > maxErrorBytes {
		s = strings.ToValidUTF8(s[:maxErrorBytes], "") + " …(truncated)"
	}
	return s
}

// finishTask moves an active task to a terminal state and propagates it.
func (e *Engine) finishTask(g *grp, ref taskRef, to model.TaskState, msg string) {
	rs, t, id := ref.run, ref.task(), ref.id()
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: t.state, Attempt: t.attempt, Token: t.token, To: to, Error: msg},
		taskEvent(rs.run.ID, id, t.state, to, t.attempt, msg))
	if countsActive(t.state) {
		rs.active--
	}
	t.state = to
	t.worker = ""
	rs.terminal++
	e.afterTerminal(g, ref)
}

// failAttempt handles a failed attempt of an active task: retry after backoff, or
// dead-letter it when its retries are spent.
func (e *Engine) failAttempt(g *grp, ref taskRef, kind model.FailureKind, msg string) {
	rs, t, id := ref.run, ref.task(), ref.id()
	if rs.errs == nil {
		rs.errs = map[int][]model.AttemptError{}
	}
	rs.errs[ref.idx] = append(rs.errs[ref.idx], model.AttemptError{Attempt: t.attempt, FailureKind: kind, Error: msg})
	if delay, again := rs.policy(ref.idx).Next(t.attempt-int(t.base), e.cfg.Rand); again {
		at := e.cfg.Now().Add(delay)
		text := fmt.Sprintf("attempt %d failed (%s): %s; retrying in %s", t.attempt, kind, msg, delay.Round(time.Millisecond))
		g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: t.state, Attempt: t.attempt, Token: t.token,
			To: model.TaskRetryWait, NextAttemptAt: at, Error: msg},
			taskEvent(rs.run.ID, id, t.state, model.TaskRetryWait, t.attempt, text))
		if countsActive(t.state) {
			rs.active--
		}
		t.state, t.nextAt, t.worker = model.TaskRetryWait, at.UnixNano(), ""
		e.timers.push(timer{at: at, kind: timerRetry, ref: ref, attempt: t.attempt})
		e.release(g, rs)
		return
	}
	dl := model.DeadLetter{ID: uuid.New(), Namespace: rs.run.Namespace, RunID: rs.run.ID, TaskID: id, Workflow: rs.run.Workflow,
		Errors: e.attemptErrors(ref)}
	g.add(store.InsertDeadLetter{DeadLetter: dl},
		store.AppendEvent{Event: model.Event{RunID: rs.run.ID, TaskID: id, Kind: model.EventDeadLettered, Attempt: t.attempt,
			Message: fmt.Sprintf("retries exhausted after %d attempt(s)", t.attempt)}})
	e.finishTask(g, ref, model.TaskDeadLettered, msg)
}

// attemptErrors returns every attempt's error of the task. After a failover the engine only
// knows the errors of attempts that ended under it, so the earlier ones are read back.
func (e *Engine) attemptErrors(ref taskRef) []model.AttemptError {
	rs, t := ref.run, ref.task()
	errs := rs.errs[ref.idx]
	if len(errs) >= t.attempt {
		return slices.Clone(errs)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	id := ref.id()
	as, err := e.cfg.Store.ListAttempts(ctx, rs.run.Namespace, rs.run.ID, id)
	if err != nil {
		e.log.Warn("cannot read earlier attempts for the dead letter", "run_id", rs.run.ID, "task_id", id, "err", err)
		return slices.Clone(errs)
	}
	var out []model.AttemptError
	known := map[int]bool{}
	for _, x := range errs {
		known[x.Attempt] = true
	}
	for _, a := range as {
		if !known[a.Number] && a.State != model.AttemptSucceeded {
			out = append(out, model.AttemptError{Attempt: a.Number, FailureKind: a.FailureKind, Error: a.Error})
		}
	}
	out = append(out, errs...)
	slices.SortFunc(out, func(a, b model.AttemptError) int { return a.Attempt - b.Attempt })
	return out
}

// requeue ends an active attempt without blaming the task (worker lost or handed it back)
// and queues the task again at once. The caller has added the FinishAttempt.
func (e *Engine) requeue(g *grp, ref taskRef, msg string) {
	rs, t, id := ref.run, ref.task(), ref.id()
	t.lost++
	if t.lost > maxLost {
		e.failAttempt(g, ref, model.FailureLost, fmt.Sprintf("%s (worker lost %d times)", msg, t.lost))
		return
	}
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: t.state, Attempt: t.attempt, Token: t.token, To: model.TaskQueued, Error: msg},
		taskEvent(rs.run.ID, id, t.state, model.TaskQueued, t.attempt, msg))
	t.state, t.worker, t.unconfirmed, t.queuedAt = model.TaskQueued, "", false, e.cfg.Now().UnixNano()
	e.enqueue(ref)
}

// lose declares an active attempt lost (its worker is gone) and re-queues the task.
func (e *Engine) lose(g *grp, ref taskRef, reason string) {
	t := ref.task()
	e.writeStart(g, ref)
	g.add(store.FinishAttempt{RunID: ref.run.run.ID, TaskID: ref.id(), Token: t.token, To: model.AttemptLost, FailureKind: model.FailureLost, Error: reason})
	delete(e.tokens, t.token)
	if w := e.workers[t.worker]; w != nil {
		w.inflight--
	}
	e.cfg.Metrics.AttemptFinished(string(model.AttemptLost))
	e.log.Warn("attempt lost", "run_id", ref.run.run.ID, "task_id", ref.id(), "attempt", t.attempt, "worker", t.worker, "reason", reason)
	e.requeue(g, ref, "attempt lost: "+reason)
}

// expire enforces an attempt's deadline on the leader's side.
func (e *Engine) expire(g *grp, ref taskRef) {
	t := ref.task()
	msg := fmt.Sprintf("no result before the attempt deadline (timeout %s + grace %s)", ref.run.wf.Tasks[ref.idx].Timeout, e.cfg.AttemptGrace)
	e.writeStart(g, ref)
	g.add(store.FinishAttempt{RunID: ref.run.run.ID, TaskID: ref.id(), Token: t.token, To: model.AttemptTimedOut, FailureKind: model.FailureTimeout, Error: msg})
	token, worker, attemptID := t.token, t.worker, t.attemptID
	g.then(func() { e.sendCancel(worker, attemptID, token, "attempt deadline passed") })
	delete(e.tokens, t.token)
	if w := e.workers[t.worker]; w != nil {
		w.inflight--
	}
	e.cfg.Metrics.AttemptFinished(string(model.AttemptTimedOut))
	e.failAttempt(g, ref, model.FailureTimeout, msg)
}
