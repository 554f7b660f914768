package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

// Session is one worker's stream, as the engine sees it. The stream handler creates it,
// attaches it, forwards the worker's messages, and sends what appears on Out.
type Session struct {
	WorkerID string
	Pool     string
	Capacity int
	// Running lists the attempts the worker says it is executing (from its hello).
	Running []RunningAttempt
	// Out carries messages for the worker. The engine never blocks on it: a worker that does
	// not drain it is disconnected through Kick.
	Out chan Outbound
	// Kick ends the stream (the handler returns err to the worker).
	Kick func(err error)
	// Done, when set, is closed as soon as the stream ends (its context is done), before the
	// handler gets to Detach: a hello that arrives meanwhile may replace the session.
	Done <-chan struct{}

	clock sessionClock // see Seen
}

// RunningAttempt is an attempt a worker reports as running.
type RunningAttempt struct {
	AttemptID string
	Token     int64
}

// Outbound is one message for a worker; exactly one field is set.
type Outbound struct {
	Welcome    *Welcome
	Assignment *Assignment
	Ack        *Ack
	Cancel     *Cancel
}

// Welcome answers a worker's hello.
type Welcome struct {
	Epoch    int64
	Adopted  []RunningAttempt
	Rejected []RunningAttempt
}

// Assignment gives an attempt to a worker.
type Assignment struct {
	AttemptID      uuid.UUID
	RunID          uuid.UUID
	TaskID         string
	Namespace      string
	Workflow       string
	Number         int
	Token          int64
	IdempotencyKey string
	Timeout        time.Duration
	Spec           executor.Spec
	// Secrets are the (name, placeholder) pairs of the secrets Spec references; the worker
	// asks for the values when it starts the attempt (see AttemptSecrets). No value here.
	Secrets []dag.SecretRef
}

// Ack acknowledges a result: the worker may forget it.
type Ack struct {
	AttemptID string
	ResultID  string
	Accepted  bool
	Reason    string
}

// Cancel tells a worker to stop an attempt.
type Cancel struct {
	AttemptID string
	Token     int64
	Reason    string
}

// worker is a connected worker.
type worker struct {
	sess     *Session
	id       string
	pool     *pool
	capacity int
	credits  int
	inflight int // attempts assigned to it and not finished
	queue    []taskRef
	draining bool
}

func (w *worker) queueCap() int { return max(4, 2*w.capacity) }

// load is how busy a worker is, relative to its capacity.
func (w *worker) load() float64 {
	return float64(w.inflight+len(w.queue)) / float64(max(1, w.capacity))
}

// pool is the workers serving one pool name, and its backlog of queued tasks that no worker
// queue had room for.
type pool struct {
	name    string
	workers []*worker
	backlog []taskRef
}

func (e *Engine) pool(name string) *pool {
	p := e.pools[name]
	if p == nil {
		p = &pool{name: name}
		e.pools[name] = p
	}
	return p
}

// enqueue routes a QUEUED task to the least loaded worker of its pool with queue room, or
// to the pool's backlog.
func (e *Engine) enqueue(ref taskRef) {
	t := ref.task()
	if t.queued {
		return
	}
	t.queued = true
	p := e.pool(ref.run.wf.Tasks[ref.idx].Pool)
	var best *worker
	for _, w := range p.workers {
		if w.draining || len(w.queue) >= w.queueCap() {
			continue
		}
		if best == nil || w.load() < best.load() {
			best = w
		}
	}
	if best != nil {
		best.queue = append(best.queue, ref)
		return
	}
	p.backlog = append(p.backlog, ref)
}

// live reports whether a queue entry still stands for a QUEUED task of a current run.
func (e *Engine) live(ref taskRef) bool {
	return e.runs[ref.run.run.ID] == ref.run && ref.task().state == model.TaskQueued
}

// next pops the next task for w: its own queue, then the pool backlog, then the tail of the
// longest queue of a peer (work stealing).
func (e *Engine) next(w *worker) (taskRef, bool) {
	pop := func(q *[]taskRef, tail bool) (taskRef, bool) {
		for len(*q) > 0 {
			var ref taskRef
			if tail {
				ref = (*q)[len(*q)-1]
				*q = (*q)[:len(*q)-1]
			} else {
				ref = (*q)[0]
				(*q)[0] = taskRef{}
				*q = (*q)[1:]
			}
			ref.task().queued = false
			if e.live(ref) {
				return ref, true
			}
		}
		return taskRef{}, false
	}
	if ref, ok := pop(&w.queue, false); ok {
		return ref, true
	}
	if ref, ok := pop(&w.pool.backlog, false); ok {
		return ref, true
	}
	for {
		var victim *worker
		for _, p := range w.pool.workers {
			if p != w && len(p.queue) > 0 && (victim == nil || len(p.queue) > len(victim.queue)) {
				victim = p
			}
		}
		if victim == nil {
			return taskRef{}, false
		}
		if ref, ok := pop(&victim.queue, true); ok {
			e.cfg.Metrics.Steal()
			e.log.Debug("stole task", "thief", w.id, "victim", victim.id, "run_id", ref.run.run.ID, "task_id", ref.id())
			return ref, true
		}
	}
}

// dispatch assigns queued tasks to workers with credits, then refills worker queues from the
// backlogs.
func (e *Engine) dispatch() {
	for _, w := range e.workers {
		for w.credits > 0 && !w.draining {
			ref, ok := e.next(w)
			if !ok {
				break
			}
			e.assign(w, ref)
		}
	}
	for _, p := range e.pools {
		for len(p.backlog) > 0 {
			ref := p.backlog[0]
			var best *worker
			for _, w := range p.workers {
				if !w.draining && len(w.queue) < w.queueCap() && (best == nil || w.load() < best.load()) {
					best = w
				}
			}
			if best == nil {
				break
			}
			p.backlog[0] = taskRef{}
			p.backlog = p.backlog[1:]
			if e.live(ref) {
				best.queue = append(best.queue, ref)
			} else {
				ref.task().queued = false
			}
		}
	}
	for _, w := range e.workers {
		e.cfg.Metrics.QueueDepth(w.id, w.pool.name, len(w.queue))
	}
}

// assign makes an attempt for a queued task on w: durable first, then sent.
func (e *Engine) assign(w *worker, ref taskRef) {
	rs, t := ref.run, ref.task()
	def := rs.wf.Tasks[ref.idx]
	tid := def.ID
	g := e.tx.group(rs.run.ID)
	rendered, err := def.Render(rs.run.Params)
	if err != nil {
		// The run's params do not render into a valid task: fail it for good.
		e.finishTask(g, ref, model.TaskFailed, "cannot render the task with this run's params: "+err.Error())
		g.close()
		return
	}
	token := e.nextToken()
	id := uuid.New()
	number := t.attempt + 1
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: tid, From: model.TaskQueued, Attempt: t.attempt, To: model.TaskAssigned,
		Assign: &store.Assignment{Token: token, WorkerID: w.id}},
		store.InsertAttempt{ID: id, RunID: rs.run.ID, TaskID: tid, Number: number, Token: token, WorkerID: w.id},
		taskEvent(rs.run.ID, tid, model.TaskQueued, model.TaskAssigned, number, "assigned to worker "+w.id))
	wait := e.cfg.Now().Sub(fromUnixNano(t.queuedAt))
	t.state, t.attempt, t.token, t.worker, t.attemptID, t.unconfirmed = model.TaskAssigned, number, token, w.id, id, false
	t.startSeen = 0
	e.tokens[token] = ref
	w.credits--
	w.inflight++
	// The leader's own deadline: a worker that goes silent does not hold the task forever.
	e.timers.push(timer{at: e.cfg.Now().Add(def.Timeout + e.cfg.AttemptGrace), kind: timerDeadline, ref: ref, token: token})
	a := &Assignment{AttemptID: id, RunID: rs.run.ID, TaskID: tid, Namespace: rs.run.Namespace, Workflow: rs.run.Workflow, Number: number, Token: token,
		IdempotencyKey: rs.run.ID.String() + "/" + tid, Timeout: def.Timeout, Spec: taskspec.FromDAG(def, rendered),
		Secrets: rendered.Secrets}
	sess := w.sess
	g.then(func() {
		e.cfg.Metrics.Dispatched(wait)
		e.deliver(sess, Outbound{Assignment: a})
	})
	g.failed(func(error) {
		// Not assigned after all (the run is reloaded): the worker never sees it, so its
		// credit is still free. (E.g. a run started in this batch whose insert conflicted.)
		w.credits++
		w.inflight--
	})
	g.close()
}

// errSlowWorker ends the stream of a worker that does not read its messages.
var errSlowWorker = errors.New("worker does not keep up with its stream; reconnect")

// deliver sends a message to a session without ever blocking the engine.
func (e *Engine) deliver(sess *Session, m Outbound) {
	if sess == nil {
		return
	}
	select {
	case sess.Out <- m:
	default:
		e.log.Warn("worker stream full; disconnecting it", "worker", sess.WorkerID)
		sess.Kick(errSlowWorker)
	}
}

func (e *Engine) sendCancel(workerID string, attemptID uuid.UUID, token int64, reason string) {
	if w := e.workers[workerID]; w != nil {
		e.deliver(w.sess, Outbound{Cancel: &Cancel{AttemptID: attemptID.String(), Token: token, Reason: reason}})
	}
}

// ---------------------------------------------------------------------------------------
// Worker session inputs.

type attach struct {
	sess    *Session
	results []Result
	reply   chan error // buffered
}

// ErrStreamAlive refuses a hello for a worker id whose stream is alive: a second stream
// must not evict the first (another process claiming the id, or a worker reconnecting before
// its old stream is seen ending; it retries).
var ErrStreamAlive = errors.New("engine: the worker already has a live stream")

// ended reports whether the session's stream is known to be over.
func (s *Session) ended() bool {
	if s.Done == nil {
		return false
	}
	select {
	case <-s.Done:
		return true
	default:
		return false
	}
}

// alive reports whether a session is a live stream: not ended, and heard from within the
// stream timeout. A session never heard from (no Seen) is not.
func (e *Engine) alive(s *Session) (bool, time.Duration) {
	if s.ended() {
		return false, 0
	}
	seen := s.LastSeen()
	if seen.IsZero() {
		return false, 0
	}
	ago := e.cfg.Now().Sub(seen)
	return ago < e.cfg.StreamTimeout, ago
}

func (in attach) handle(e *Engine) {
	s := in.sess
	if old := e.workers[s.WorkerID]; old != nil {
		if live, ago := e.alive(old.sess); live {
			e.log.Warn("a second stream for a worker with a live stream refused", "worker", s.WorkerID,
				"last_seen_ago", ago.Round(time.Millisecond), "stream_timeout", e.cfg.StreamTimeout)
			in.answer(fmt.Errorf("%w: worker %s was heard from %v ago (a stream is dead after %v of silence)",
				ErrStreamAlive, s.WorkerID, ago.Round(time.Millisecond), e.cfg.StreamTimeout))
			return
		}
		old.sess.Kick(errors.New("replaced by a newer connection of the same worker"))
		e.removeWorker(old)
	}
	w := &worker{sess: s, id: s.WorkerID, capacity: max(1, s.Capacity), pool: e.pool(s.Pool)}
	w.pool.workers = append(w.pool.workers, w)
	e.workers[w.id] = w

	welcome := &Welcome{Epoch: e.cfg.Epoch}
	listed := map[int64]bool{}
	for _, ra := range s.Running {
		listed[ra.Token] = true
		ref, ok := e.tokens[ra.Token]
		if !ok || !ref.task().state.Active() {
			welcome.Rejected = append(welcome.Rejected, ra)
			continue
		}
		t := ref.task()
		if t.worker != w.id {
			welcome.Rejected = append(welcome.Rejected, ra)
			continue
		}
		t.unconfirmed = false
		if id, err := uuid.Parse(ra.AttemptID); err == nil {
			t.attemptID = id
		}
		welcome.Adopted = append(welcome.Adopted, ra)
	}
	for _, r := range in.results {
		listed[r.Token] = true
	}
	// Every attempt this leader has on the worker counts in its load: the adopted ones, and
	// those its pending results end below (each end takes its attempt off again). Attempts
	// the worker does not know — the assignment never reached it, or it restarted — are lost,
	// once the count is whole (losing re-queues, and routing reads the load).
	var unknown []taskRef
	for token, ref := range e.tokens {
		if t := ref.task(); t.worker == w.id && t.token == token && t.state.Active() {
			w.inflight++
			if !listed[token] {
				unknown = append(unknown, ref)
			}
		}
	}
	for _, ref := range unknown {
		rg := e.tx.group(ref.run.run.ID)
		e.lose(rg, ref, "worker "+w.id+" reconnected without it")
		rg.close()
	}
	// The welcome is the stream's first message, before any acknowledgement of the results
	// below. It changes no durable state (adoption is in memory; attempts it does not adopt
	// are lost by their own groups), so it need not wait for the commit.
	e.deliver(s, Outbound{Welcome: welcome})
	for _, r := range in.results {
		result{sess: s, res: r}.handle(e)
	}
	e.log.Info("worker attached", "worker", w.id, "pool", w.pool.name, "capacity", w.capacity,
		"adopted", len(welcome.Adopted), "rejected", len(welcome.Rejected), "pending_results", len(in.results))
	in.answer(nil)
}

func (in attach) answer(err error) {
	if in.reply != nil {
		in.reply <- err
	}
}

// removeWorker takes a worker out of routing; its queue goes back to its pool.
func (e *Engine) removeWorker(w *worker) {
	if e.workers[w.id] == w {
		delete(e.workers, w.id)
	}
	p := w.pool
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	q := w.queue
	w.queue = nil
	for _, ref := range q {
		ref.task().queued = false
		if e.live(ref) {
			e.enqueue(ref)
		}
	}
	e.cfg.Metrics.QueueDepth(w.id, p.name, 0) // do not leave a gone worker's last depth behind
}

// Attach registers a worker's stream with the engine (its hello) and returns once the
// engine has it. results are the results the worker still holds unacknowledged. A worker id
// whose current session is alive (see alive) is refused with ErrStreamAlive, changing
// nothing; a dead one is replaced. When Attach fails for another reason (ctx, the engine
// stopping), the session may have been attached all the same: call Detach.
func (e *Engine) Attach(ctx context.Context, s *Session, results []Result) error {
	reply := make(chan error, 1)
	err, cerr := call(ctx, e, attach{sess: s, results: results, reply: reply}, reply)
	if cerr != nil {
		return cerr
	}
	return err
}

type detach struct{ sess *Session }

func (in detach) handle(e *Engine) {
	if w := e.workers[in.sess.WorkerID]; w != nil && w.sess == in.sess {
		e.removeWorker(w)
		e.log.Info("worker detached", "worker", w.id, "inflight", w.inflight)
	}
}

// Detach tells the engine a worker's stream ended. Its running attempts stay assigned: the
// worker may reconnect (and re-attach them) or its lease expires (and they are lost).
func (e *Engine) Detach(s *Session) {
	// Detach must not be lost even while the engine is busy, but must not block forever
	// once the engine stopped.
	_ = e.send(context.Background(), detach{sess: s})
}

type credits struct {
	sess *Session
	n    int
}

func (in credits) handle(e *Engine) {
	w := e.workers[in.sess.WorkerID]
	if w == nil || w.sess != in.sess || in.n <= 0 {
		return
	}
	w.credits = min(w.credits+in.n, max(0, w.capacity-w.inflight))
}

// Credits records free slots announced by a worker.
func (e *Engine) Credits(ctx context.Context, s *Session, n int) error {
	return e.send(ctx, credits{sess: s, n: n})
}

type started struct {
	sess  *Session
	token int64
	at    time.Time
}

func (in started) handle(e *Engine) {
	ref, ok := e.tokens[in.token]
	if !ok || ref.task().worker != in.sess.WorkerID {
		return
	}
	rs, t := ref.run, ref.task()
	if t.state != model.TaskAssigned || t.startSeen != 0 {
		return
	}
	now := e.cfg.Now()
	t.startSeen = now.UnixNano()
	// The deadline runs from the start as reported, whenever the start is written.
	e.timers.push(timer{at: now.Add(rs.wf.Tasks[ref.idx].Timeout + e.cfg.AttemptGrace), kind: timerDeadline, ref: ref, token: t.token})
	if e.cfg.StartDelay <= 0 {
		e.starts = append(e.starts, startRef{ref, t.token})
		return
	}
	e.timers.push(timer{at: now.Add(e.cfg.StartDelay), kind: timerStart, ref: ref, token: t.token})
}

// startRef is a start reported in the current batch.
type startRef struct {
	ref   taskRef
	token int64
}

// flushStarts writes, each in its own group, the starts reported in this batch whose
// attempt did not end in it too (an end carries its start, see writeStart).
func (e *Engine) flushStarts() {
	for i, s := range e.starts {
		e.starts[i] = startRef{}
		if e.runs[s.ref.run.run.ID] != s.ref.run {
			continue // the run ended or was reloaded
		}
		if t := s.ref.task(); t.token == s.token && t.state == model.TaskAssigned {
			g := e.tx.group(s.ref.run.run.ID)
			e.writeStart(g, s.ref)
			g.close()
		}
	}
	e.starts = e.starts[:0]
}

// writeStart adds the ASSIGNED → RUNNING transition of an attempt whose worker reported it
// started (t.startSeen set) to g; it does nothing for an attempt not reported started. Every
// group that ends an ASSIGNED attempt calls it first, so a start kept in memory is written
// with the attempt's outcome, in the order it happened.
func (e *Engine) writeStart(g *grp, ref taskRef) {
	rs, t := ref.run, ref.task()
	if t.state != model.TaskAssigned || t.startSeen == 0 {
		return
	}
	seen, id := fromUnixNano(t.startSeen), ref.id()
	deadline := seen.Add(rs.wf.Tasks[ref.idx].Timeout + e.cfg.AttemptGrace)
	g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: model.TaskAssigned, Attempt: t.attempt, Token: t.token,
		To: model.TaskRunning, StartedAt: seen},
		store.StartAttempt{Token: t.token, DeadlineAt: deadline, StartedAt: seen},
		store.AppendEvent{Event: model.Event{RunID: rs.run.ID, TaskID: id, Kind: model.EventAttemptStarted, Attempt: t.attempt,
			From: string(model.TaskAssigned), To: string(model.TaskRunning), Message: "started on worker " + t.worker}})
	t.state, t.startSeen = model.TaskRunning, 0
}

// Started records that a worker began executing an attempt.
func (e *Engine) Started(ctx context.Context, s *Session, token int64, at time.Time) error {
	return e.send(ctx, started{sess: s, token: token, at: at})
}

type result struct {
	sess *Session
	res  Result
}

func (in result) handle(e *Engine) {
	ref, known := e.tokens[in.res.Token]
	if known && ref.task().worker != in.sess.WorkerID {
		// The attempt is current and another worker's: refused, nothing written. (A stale
		// token of another worker's attempt is refused by the store, see applyResult.)
		e.refuseForeign(in.sess, in.res, ref.task().worker)
		return
	}
	runID := uuid.Nil
	if known {
		runID = ref.run.run.ID
	}
	g := e.tx.group(runID)
	current := e.applyResult(g, in.res, in.sess.WorkerID)
	sess, res := in.sess, in.res
	if current {
		g.then(func() {
			e.deliver(sess, Outbound{Ack: &Ack{AttemptID: res.AttemptID, ResultID: res.ResultID, Accepted: true}})
		})
	}
	g.failed(func(err error) {
		if errors.Is(err, store.ErrNotAssigned) {
			var na *store.NotAssignedError
			assigned := ""
			if errors.As(err, &na) {
				assigned = na.Assigned
			}
			e.refuseForeign(sess, res, assigned)
			return
		}
		if errors.Is(err, store.ErrStaleAttempt) {
			e.log.Info("stale result recorded and ignored", "worker", sess.WorkerID, "token", res.Token, "err", err)
			e.deliver(sess, Outbound{Ack: &Ack{AttemptID: res.AttemptID, ResultID: res.ResultID, Accepted: false, Reason: "stale: " + err.Error()}})
		}
		// Another conflict: the run is reloaded and the result not acknowledged; the
		// worker resends it after its next reconnect.
	})
	if !current {
		// The store diagnoses the stale result when the group fails; should it apply (memory
		// out of date), the run is reloaded and the result acknowledged as accepted.
		g.then(func() {
			e.markDirty(runID)
			e.deliver(sess, Outbound{Ack: &Ack{AttemptID: res.AttemptID, ResultID: res.ResultID, Accepted: true}})
		})
	}
	g.close()
}

// refuseForeign answers a result for an attempt assigned to another worker: not accepted,
// nothing recorded. An honest worker never sends one; the acknowledgement lets it forget it.
func (e *Engine) refuseForeign(sess *Session, res Result, assigned string) {
	e.log.Warn("result for another worker's attempt refused", "worker", sess.WorkerID, "assigned_to", assigned,
		"token", res.Token, "attempt_id", res.AttemptID)
	e.deliver(sess, Outbound{Ack: &Ack{AttemptID: res.AttemptID, ResultID: res.ResultID, Accepted: false,
		Reason: "refused: the attempt is not assigned to worker " + sess.WorkerID}})
}

// Result hands a worker's result to the engine. The acknowledgement goes out on the
// worker's session once the outcome is durable.
func (e *Engine) Result(ctx context.Context, s *Session, r Result) error {
	return e.send(ctx, result{sess: s, res: r})
}

type draining struct{ sess *Session }

func (in draining) handle(e *Engine) {
	if w := e.workers[in.sess.WorkerID]; w != nil && w.sess == in.sess {
		w.draining, w.credits = true, 0
		q := w.queue
		w.queue = nil
		for _, ref := range q {
			ref.task().queued = false
			if e.live(ref) {
				e.enqueue(ref)
			}
		}
	}
}

// Draining records that a worker takes no new work.
func (e *Engine) Draining(ctx context.Context, s *Session) error {
	return e.send(ctx, draining{sess: s})
}

type workerGone struct{ id string }

func (in workerGone) handle(e *Engine) {
	if w := e.workers[in.id]; w != nil {
		w.sess.Kick(fmt.Errorf("worker %s: lease expired; register again", in.id))
		e.removeWorker(w)
	}
	for _, ref := range e.tokensOf(in.id) {
		g := e.tx.group(ref.run.run.ID)
		e.lose(g, ref, "worker "+in.id+" lease expired")
		g.close()
	}
}

func (e *Engine) tokensOf(workerID string) []taskRef {
	var out []taskRef
	for _, ref := range e.tokens {
		if ref.task().worker == workerID {
			out = append(out, ref)
		}
	}
	return out
}

// WorkerGone tells the engine a worker's registration disappeared from etcd: its attempts
// are lost and re-queued.
func (e *Engine) WorkerGone(ctx context.Context, id string) error {
	return e.send(ctx, workerGone{id: id})
}
