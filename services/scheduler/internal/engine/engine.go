package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// Defaults.
const (
	DefaultMaxBatch     = 4096
	DefaultAttemptGrace = 30 * time.Second
	DefaultAdoptGrace   = 10 * time.Second
	DefaultInputBuffer  = 8192
	// DefaultPlanChunk bounds the trigger-rule decisions (task transitions: PENDING →
	// QUEUED, SKIPPED or UPSTREAM_FAILED) one batch applies; see Config.PlanChunk.
	DefaultPlanChunk = 1000
	// DefaultStreamTimeout is three heartbeats at the workers' default interval (5s).
	DefaultStreamTimeout = 15 * time.Second
)

// ErrNotLeader is returned to callers when the engine has stopped (leadership lost or resigned).
var ErrNotLeader = errors.New("engine: not the leader (any more)")

// ErrNotFound is returned for a run the engine does not know.
var ErrNotFound = errors.New("engine: not found")

// Config configures an Engine for one leadership term.
type Config struct {
	Store  *store.Store
	Epoch  int64
	Holder string
	Logger *slog.Logger
	// Workflows resolves workflow versions; shared across terms (versions are immutable).
	Workflows *WorkflowCache
	// LiveWorkers reports the worker ids registered in etcd right now (for the rebuild).
	LiveWorkers func() map[string]bool
	// AttemptGrace is added to a task's timeout to form the leader-side attempt deadline.
	AttemptGrace time.Duration
	// AdoptGrace is how long, after taking office, a live worker has to re-attach its running
	// attempts before they are declared lost.
	AdoptGrace time.Duration
	MaxBatch   int
	// PlanChunk is how many trigger-rule decisions one batch (one transaction) applies at
	// most; a run that decides more at once (a wide run starting, a fan-out after its head)
	// is planned over several batches, so no transaction carries 10,000+ transitions and
	// the leader's encoding buffers stay bounded. Zero or negative: DefaultPlanChunk.
	PlanChunk int
	// StreamTimeout is how long a worker's stream may stay silent (no heartbeat, no message)
	// and still count as alive: a hello for a worker id whose stream is alive is refused
	// (ErrStreamAlive); one whose stream is silent for longer replaces it. Zero or negative:
	// DefaultStreamTimeout.
	StreamTimeout time.Duration
	// StartDelay is how long an attempt's start (ASSIGNED → RUNNING), reported by its
	// worker, may wait in memory for the attempt's result before it is committed on its own.
	// A result (or any other end of the attempt) that arrives first writes the start in its
	// own group, so a short task costs two commits (assignment, result) instead of three.
	// Zero or negative: the start is written with the batch it arrived in, unless the
	// attempt ended in that same batch — RUNNING is then as prompt as without the delay.
	StartDelay time.Duration
	// Metrics receives observations; nil records nothing.
	Metrics Metrics
	Now     func() time.Time
	Rand    func() float64
}

// Metrics is what the engine reports; the scheduler binds it to OpenTelemetry.
type Metrics interface {
	BatchCommitted(groups int, d time.Duration)
	AttemptFinished(outcome string)
	RunFinished(state string)
	Steal()
	Dispatched(queueWait time.Duration)
	QueueDepth(worker, pool string, depth int)
}

type noMetrics struct{}

func (noMetrics) BatchCommitted(int, time.Duration) {}
func (noMetrics) AttemptFinished(string)            {}
func (noMetrics) RunFinished(string)                {}
func (noMetrics) Steal()                            {}
func (noMetrics) Dispatched(time.Duration)          {}
func (noMetrics) QueueDepth(string, string, int)    {}

// Engine is the leader's orchestration core for one leadership term.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	in    chan input
	done  chan struct{} // closed when Run returns
	ready chan struct{} // closed when the rebuild finished

	// Everything below is owned by Run's goroutine.
	runs     map[uuid.UUID]*runState
	tokens   map[int64]taskRef // current token → task, for active attempts
	tokenSeq int64
	workers  map[string]*worker
	pools    map[string]*pool
	timers   timerHeap
	tx       *txn
	starts   []startRef           // starts reported in this batch, written at its end (StartDelay ≤ 0)
	dirty    map[uuid.UUID]string // runs to reload after a conflict, with their namespace
	planQ    []*runState          // runs with deferred decisions, oldest first (see decide)
	// afterCommit, when set (tests only), runs on the loop after each non-empty commit.
	afterCommit func()
	ctx         context.Context // Run's context, for the rare reads inside the loop
}

// New returns an engine; call Run to start it.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AttemptGrace <= 0 {
		cfg.AttemptGrace = DefaultAttemptGrace
	}
	if cfg.AdoptGrace <= 0 {
		cfg.AdoptGrace = DefaultAdoptGrace
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.PlanChunk <= 0 {
		cfg.PlanChunk = DefaultPlanChunk
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = DefaultStreamTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.LiveWorkers == nil {
		cfg.LiveWorkers = func() map[string]bool { return nil }
	}
	if cfg.Workflows == nil {
		cfg.Workflows = NewWorkflowCache(cfg.Store)
	}
	return &Engine{
		cfg:     cfg,
		log:     cfg.Logger.With("epoch", cfg.Epoch),
		in:      make(chan input, DefaultInputBuffer),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		runs:    map[uuid.UUID]*runState{},
		tokens:  map[int64]taskRef{},
		workers: map[string]*worker{},
		pools:   map[string]*pool{},
		dirty:   map[uuid.UUID]string{},
	}
}

// Ready is closed once the engine has rebuilt its state and accepts work.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Done is closed when Run has returned.
func (e *Engine) Done() <-chan struct{} { return e.done }

// input is one thing for the loop to handle.
type input interface {
	handle(e *Engine)
}

// send queues an input, blocking while the engine is busy (back-pressure) until ctx ends or
// the engine stops.
func (e *Engine) send(ctx context.Context, in input) error {
	select {
	case e.in <- in:
		return nil
	case <-e.done:
		return ErrNotLeader
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call sends an input carrying a reply channel and waits for the reply.
func call[T any](ctx context.Context, e *Engine, in input, reply chan T) (T, error) {
	var zero T
	if err := e.send(ctx, in); err != nil {
		return zero, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-e.done:
		return zero, ErrNotLeader
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Run rebuilds the state from PostgreSQL, then runs the loop until ctx ends (nil) or the
// engine cannot go on (stale epoch, unrecoverable store error).
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.done)
	e.ctx = ctx
	if err := e.rebuild(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	close(e.ready)
	e.log.Info("engine ready", "runs", len(e.runs), "active_attempts", len(e.tokens))

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := make([]input, 0, e.cfg.MaxBatch)
	for {
		var wake <-chan time.Time
		if at, ok := e.timers.next(); ok {
			timer.Reset(max(0, at.Sub(e.cfg.Now())))
			wake = timer.C
		}
		batch = batch[:0]
		if len(e.planQ) > 0 {
			// Deferred planning is work: take what has arrived, but do not wait.
			select {
			case <-ctx.Done():
				return nil
			default:
			}
		} else {
			select {
			case <-ctx.Done():
				return nil
			case in := <-e.in:
				batch = append(batch, in)
			case <-wake:
			}
		}
	drain:
		for len(batch) < e.cfg.MaxBatch {
			select {
			case in := <-e.in:
				batch = append(batch, in)
			default:
				break drain
			}
		}
		e.tx = &txn{}
		e.fireTimers()
		e.planDeferred() // older decisions first
		for _, in := range batch {
			in.handle(e)
		}
		e.flushStarts()
		e.dispatch()
		if err := e.commit(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(e.dirty) > 0 {
			if err := e.reloadDirty(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// txn collects one batch: groups of operations and, per group, what to do once it applied.
type txn struct {
	batch     store.Batch
	effects   [][]func()
	runs      [][]uuid.UUID // runs each group touches, reloaded if the group conflicts
	after     []func()      // effects that need no commit (replies to no-op calls)
	failHooks []failHook
	groups    [][]store.Op // each group's ops, to apply them one by one after a permanent failure
	planned   int          // trigger-rule decisions applied in this batch (see Config.PlanChunk)
}

// group starts a new all-or-nothing group of operations about the given run.
func (t *txn) group(run uuid.UUID, ops ...store.Op) *grp {
	g := &grp{t: t, idx: -1, run: run}
	g.ops = append(g.ops, ops...)
	return g
}

// grp is one group under construction. Call close to add it to the batch.
type grp struct {
	t       *txn
	idx     int
	run     uuid.UUID
	ops     []store.Op
	effects []func()
	onFail  func(error)
}

func (g *grp) add(ops ...store.Op)  { g.ops = append(g.ops, ops...) }
func (g *grp) then(f func())        { g.effects = append(g.effects, f) }
func (g *grp) failed(f func(error)) { g.onFail = f }

func (g *grp) close() {
	if len(g.ops) == 0 {
		g.t.after = append(g.t.after, g.effects...)
		return
	}
	g.idx = g.t.batch.Add(g.ops...)
	g.t.groups = append(g.t.groups, g.ops)
	effects := g.effects
	if g.onFail != nil {
		onFail := g.onFail
		g.t.failHooks = append(g.t.failHooks, failHook{g.idx, onFail})
	}
	g.t.effects = append(g.t.effects, effects)
	g.t.runs = append(g.t.runs, []uuid.UUID{g.run})
}

type failHook struct {
	idx int
	f   func(error)
}

// commit applies the batch, retrying transient database failures, then performs the effects
// of the groups that applied. A batch that fails for good (a constraint violation, bad data:
// a poison group) is applied again one group at a time, so that one bad group is isolated
// (its run is reloaded) instead of blocking the leader forever.
func (e *Engine) commit(ctx context.Context) error {
	t := e.tx
	defer func() { e.tx = nil }()
	if t.batch.Len() > 0 {
		start := time.Now()
		results, err := e.apply(ctx, &t.batch)
		if err != nil && permanent(err) {
			e.log.Error("batch cannot commit; applying its groups one at a time", "groups", t.batch.Len(), "err", err)
			results = make([]error, len(t.groups))
			for i, ops := range t.groups {
				var b store.Batch
				b.Add(ops...)
				r, err := e.apply(ctx, &b)
				switch {
				case err == nil:
					results[i] = r[0]
				case permanent(err):
					results[i] = err
				default:
					return err
				}
			}
		} else if err != nil {
			return err
		}
		e.cfg.Metrics.BatchCommitted(t.batch.Len(), time.Since(start))
		hooks := map[int]func(error){}
		for _, h := range t.failHooks {
			hooks[h.idx] = h.f
		}
		for i, res := range results {
			if res == nil {
				for _, f := range t.effects[i] {
					f()
				}
				continue
			}
			if h, ok := hooks[i]; ok {
				h(res)
			}
			if errors.Is(res, store.ErrStaleAttempt) {
				continue // expected: a zombie's result, recorded stale by the store
			}
			for _, id := range t.runs[i] {
				e.markDirty(id)
			}
			e.log.Warn("group not applied; reloading its run", "err", res)
		}
	}
	for _, f := range t.after {
		f()
	}
	if e.afterCommit != nil && t.batch.Len() > 0 {
		e.afterCommit()
	}
	return nil
}

// permanent reports whether retrying the same batch cannot help.
func permanent(err error) bool {
	return store.Permanent(err) || errors.Is(err, store.ErrInvalidArgument)
}

// apply commits one batch, retrying transient failures with capped backoff for as long as
// ctx lives. It returns a stale epoch, a permanent error, or ctx's error.
func (e *Engine) apply(ctx context.Context, b *store.Batch) ([]error, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		results, err := e.cfg.Store.Apply(ctx, e.cfg.Epoch, b)
		switch {
		case err == nil:
			return results, nil
		case errors.Is(err, store.ErrStaleEpoch):
			return nil, fmt.Errorf("deposed: %w", err)
		case permanent(err):
			return nil, err
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		e.log.Warn("commit failed; retrying", "attempt", attempt, "groups", b.Len(), "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// markDirty schedules a run the engine holds for a reload from PostgreSQL (a run it does not
// hold has nothing in memory to correct).
func (e *Engine) markDirty(id uuid.UUID) {
	if rs, ok := e.runs[id]; ok && id != uuid.Nil {
		e.dirty[id] = rs.run.Namespace
	}
}

// reloadDirty reloads runs whose in-memory state proved wrong. Their attempts may have been
// counted off a worker's load (a result applied in memory whose group then failed) and be
// active again, so the loads are recounted once the runs are back.
func (e *Engine) reloadDirty(ctx context.Context) error {
	for id, ns := range e.dirty {
		delete(e.dirty, id)
		if err := e.reloadRun(ctx, ns, id); err != nil {
			return err
		}
	}
	e.recountInflight()
	return nil
}

// nextToken returns a new fencing token: epoch<<32 | n.
func (e *Engine) nextToken() int64 {
	e.tokenSeq++
	return e.cfg.Epoch<<32 | e.tokenSeq
}

// WorkflowCache resolves workflow versions to parsed DAGs, keyed by (namespace, name,
// version): one name in two namespaces is two workflows. Versions are immutable, so entries
// never go stale. Safe for concurrent use.
type WorkflowCache struct {
	store *store.Store
	mu    sync.Mutex
	m     map[versionKey]*dag.Workflow
}

type versionKey struct {
	ns      string
	name    string
	version int
}

// NewWorkflowCache returns an empty cache reading from st.
func NewWorkflowCache(st *store.Store) *WorkflowCache {
	return &WorkflowCache{store: st, m: map[versionKey]*dag.Workflow{}}
}

// Get returns the parsed DAG of a version of workflow name in namespace ns.
func (c *WorkflowCache) Get(ctx context.Context, ns, name string, version int) (*dag.Workflow, error) {
	k := versionKey{ns, name, version}
	c.mu.Lock()
	wf, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return wf, nil
	}
	v, err := c.store.GetVersion(ctx, ns, name, version)
	if err != nil {
		return nil, err
	}
	wf, err = dag.Parse(fmt.Sprintf("%s@v%d", name, version), []byte(v.YAML), dag.Limits{MaxFileBytes: len(v.YAML) + 1})
	if err != nil {
		return nil, fmt.Errorf("stored workflow %s/%s version %d no longer parses: %w", ns, name, version, err)
	}
	c.Put(ns, name, version, wf)
	return wf, nil
}

// cached returns a version only if it is parsed already (no database read).
func (c *WorkflowCache) cached(ns, name string, version int) (*dag.Workflow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wf, ok := c.m[versionKey{ns, name, version}]
	return wf, ok
}

// Put records an already parsed version of workflow name in namespace ns.
func (c *WorkflowCache) Put(ns, name string, version int, wf *dag.Workflow) {
	c.mu.Lock()
	c.m[versionKey{ns, name, version}] = wf
	c.mu.Unlock()
}

// event builds an AppendEvent op.
func taskEvent(run uuid.UUID, task string, from, to model.TaskState, attempt int, msg string) store.Op {
	return store.AppendEvent{Event: model.Event{RunID: run, TaskID: task, Kind: model.EventTaskState,
		From: string(from), To: string(to), Attempt: attempt, Message: msg}}
}

func runEvent(run uuid.UUID, from, to model.RunState, msg string) store.Op {
	return store.AppendEvent{Event: model.Event{RunID: run, Kind: model.EventRunState,
		From: string(from), To: string(to), Message: msg}}
}
