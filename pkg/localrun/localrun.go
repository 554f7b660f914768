package localrun

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"time"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/mask"
	"github.com/cairn-io/cairn/pkg/retry"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

// State is the state of a task or of the run in a local run.
type State string

// Task and run states. Pending, Running and RetryWait are transient; the others are final.
const (
	Pending        State = "pending"
	Running        State = "running"
	RetryWait      State = "retry_wait"
	Succeeded      State = "succeeded"
	Failed         State = "failed" // retries exhausted (dead-lettered in a cluster)
	UpstreamFailed State = "upstream_failed"
	Skipped        State = "skipped"
	Cancelled      State = "cancelled"
)

// Config tunes a local run.
type Config struct {
	// Params override the workflow's parameter defaults; an undeclared one is an error.
	Params map[string]string
	// Parallel is how many tasks may run at once (default 1: sequential).
	Parallel int
	// Executor runs attempts (required).
	Executor executor.Executor
	// OnEvent, if set, is called for each event, in order, from the runner's goroutine.
	OnEvent func(Event)
	// Rand returns uniform numbers in [0,1) for backoff jitter (default math/rand/v2).
	Rand func() float64
	// RunID names the run in CAIRN_RUN_ID and idempotency keys (default "local-" + random).
	RunID string
	// Secrets resolves the workflow's {{ secret "name" }} references (LoadSecrets builds one
	// from a secrets file and CAIRN_SECRET_* variables). Every referenced secret is looked up
	// before the run starts; one missing is an error wrapping ErrSecrets. nil: no secrets.
	Secrets taskspec.Lookup
}

// EventKind says what happened.
type EventKind string

// Event kinds.
const (
	EventStarted   EventKind = "started"   // an attempt started
	EventSucceeded EventKind = "succeeded" // an attempt succeeded; the task is done
	EventRetrying  EventKind = "retrying"  // an attempt failed; another follows after Delay
	EventFailed    EventKind = "failed"    // an attempt failed and no retries are left
	EventSkipped   EventKind = "skipped"   // the trigger rule decided skip
	EventUpstream  EventKind = "upstream_failed"
	EventCancelled EventKind = "cancelled"
)

// Event is one step of a run, for progress displays.
type Event struct {
	Time     time.Time
	Kind     EventKind
	TaskID   string
	Attempt  int
	Delay    time.Duration // for EventRetrying
	Duration time.Duration // for finished attempts
	Error    string
	Done     int // tasks in a final state, after this event
	Total    int
}

// TaskReport is the final record of one task.
type TaskReport struct {
	ID         string
	State      State
	Attempts   int
	Duration   time.Duration // sum of its attempts' run times
	ExitCode   int           // of the last attempt; -1 if none
	HTTPStatus int           // of the last attempt; 0 if none
	Error      string        // of the last failed attempt
	Output     []byte        // tail of the last attempt's output
}

// Report is the outcome of a run.
type Report struct {
	RunID    string
	Workflow string
	State    State // Succeeded, Failed or Cancelled
	Started  time.Time
	Finished time.Time
	Tasks    []TaskReport // in topological order
}

// ErrConfig is returned for an unusable Config.
var ErrConfig = errors.New("localrun: invalid config")

type task struct {
	def      *dag.Task
	state    State
	outcome  dag.Outcome
	attempts int
	dueAt    time.Time // RetryWait: when the next attempt may start
	report   TaskReport
	policy   retry.Policy
	rendered dag.RenderedTask
}

type finished struct {
	idx int
	res *executor.Result
}

// Run executes one run of wf and returns its report. The error is non-nil only when the run
// could not start (bad params, bad config); a failed run is a Report with State Failed.
func Run(ctx context.Context, wf *dag.Workflow, cfg Config) (*Report, error) {
	if cfg.Executor == nil {
		return nil, fmt.Errorf("%w: Executor is required", ErrConfig)
	}
	if cfg.Parallel < 0 {
		return nil, fmt.Errorf("%w: parallel must be at least 1, got %d", ErrConfig, cfg.Parallel)
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 1
	}
	slots := cfg.Parallel
	if wf.MaxActiveTasks > 0 && wf.MaxActiveTasks < slots {
		slots = wf.MaxActiveTasks
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.RunID == "" {
		cfg.RunID = "local-" + randomHex(6)
	}
	params := maps.Clone(cfg.Params)
	if err := wf.ValidateParams(params); err != nil {
		return nil, err
	}

	secrets, err := resolveRunSecrets(wf, cfg.Secrets)
	if err != nil {
		return nil, err
	}

	r := &runner{wf: wf, cfg: cfg, slots: slots, tasks: make([]*task, len(wf.Tasks)), done: make(chan finished),
		masker: mask.New(secrets)}
	for i, t := range wf.Tasks {
		rendered, err := t.Render(params)
		if err != nil {
			return nil, fmt.Errorf("task %q: %w", t.ID, err)
		}
		r.tasks[i] = &task{
			def: t, state: Pending, rendered: rendered,
			report: TaskReport{ID: t.ID, ExitCode: -1},
			policy: retry.Policy{
				MaxRetries: t.Retries, Initial: t.Backoff.Initial, Max: t.Backoff.Max,
				Multiplier: t.Backoff.Multiplier, Jitter: t.Backoff.Jitter,
			},
		}
	}
	return r.run(ctx), nil
}

type runner struct {
	wf      *dag.Workflow
	cfg     Config
	slots   int
	tasks   []*task
	ready   rankHeap // tasks decided Run, waiting for a slot, by topological rank
	waiting []int    // tasks in RetryWait (few: only failed ones), so the loop never scans every task
	running int
	final   int
	done    chan finished
	masker  *mask.Masker // every secret of the run: what it reports is masked with all of them
}

func (r *runner) outcome(i int) dag.Outcome { return r.tasks[i].outcome }

func (r *runner) run(ctx context.Context) *Report {
	rep := &Report{RunID: r.cfg.RunID, Workflow: r.wf.Name, Started: time.Now()}
	r.ready.rank = r.wf.Graph.Rank
	r.apply(r.wf.Graph.Ready(r.outcome))

	runCtx, cancelRunning := context.WithCancelCause(ctx)
	defer cancelRunning(nil)
	cancelled := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for r.final < len(r.tasks) {
		if !cancelled {
			r.startReady(runCtx)
		}
		if r.running == 0 && r.ready.Len() == 0 && r.nextDue().IsZero() {
			break // nothing can make progress (only possible after cancellation)
		}
		var wake <-chan time.Time
		if due := r.nextDue(); !due.IsZero() && !cancelled {
			timer.Reset(time.Until(due))
			wake = timer.C
		}
		select {
		case f := <-r.done:
			r.running--
			r.finish(f, cancelled)
		case <-wake:
			now := time.Now()
			still := r.waiting[:0]
			for _, i := range r.waiting {
				if t := r.tasks[i]; t.state == RetryWait && !t.dueAt.After(now) {
					t.state = Pending // decided Run already; waiting for a slot
					heap.Push(&r.ready, i)
				} else if t.state == RetryWait {
					still = append(still, i)
				}
			}
			r.waiting = still
		case <-ctxDone(ctx, cancelled):
			cancelled = true
			cancelRunning(context.Cause(ctx))
			for i, t := range r.tasks {
				if t.state != Running && !isFinal(t.state) {
					r.setFinal(i, Cancelled, dag.OutcomeCancelled)
					r.emit(Event{Kind: EventCancelled, TaskID: t.def.ID})
				}
			}
			r.ready = rankHeap{rank: r.wf.Graph.Rank}
		}
	}
	rep.Finished = time.Now()
	rep.State = Succeeded
	for _, i := range r.wf.Graph.Order() {
		t := r.tasks[i]
		rep.Tasks = append(rep.Tasks, t.report)
		switch t.state {
		case Failed, UpstreamFailed:
			if rep.State == Succeeded {
				rep.State = Failed
			}
		case Cancelled:
			rep.State = Cancelled
		}
	}
	if cancelled {
		rep.State = Cancelled
	}
	return rep
}

// ctxDone returns ctx.Done() until the run has been cancelled, then nil (never ready).
func ctxDone(ctx context.Context, cancelled bool) <-chan struct{} {
	if cancelled {
		return nil
	}
	return ctx.Done()
}

func (r *runner) nextDue() time.Time {
	var due time.Time
	for _, i := range r.waiting {
		if t := r.tasks[i]; t.state == RetryWait && (due.IsZero() || t.dueAt.Before(due)) {
			due = t.dueAt
		}
	}
	return due
}

// apply records trigger-rule decisions.
func (r *runner) apply(ds []dag.Decided) {
	for _, d := range ds {
		t := r.tasks[d.Task]
		switch d.Decision {
		case dag.Run:
			t.outcome = dag.OutcomeActive
			heap.Push(&r.ready, d.Task)
		case dag.Skip:
			r.setFinal(d.Task, Skipped, dag.OutcomeSkipped)
			r.emit(Event{Kind: EventSkipped, TaskID: t.def.ID})
		case dag.UpstreamFailed:
			r.setFinal(d.Task, UpstreamFailed, dag.OutcomeUpstreamFailed)
			r.emit(Event{Kind: EventUpstream, TaskID: t.def.ID})
		}
	}
}

func (r *runner) setFinal(i int, s State, o dag.Outcome) {
	t := r.tasks[i]
	t.state, t.outcome = s, o
	t.report.State = s
	r.final++
}

func (r *runner) startReady(ctx context.Context) {
	for r.running < r.slots && r.ready.Len() > 0 {
		i := heap.Pop(&r.ready).(int)
		t := r.tasks[i]
		t.attempts++
		t.state = Running
		t.report.Attempts = t.attempts
		r.running++
		a := &executor.Attempt{
			RunID:          r.cfg.RunID,
			TaskID:         t.def.ID,
			Number:         t.attempts,
			IdempotencyKey: r.cfg.RunID + "/" + t.def.ID,
			Timeout:        t.def.Timeout,
			Redact:         r.masker,
		}
		// As on a worker: the values go into this attempt's spec only, just before it runs.
		spec, _, err := taskspec.ResolveSecrets(taskspec.FromDAG(t.def, t.rendered), t.rendered.Secrets, r.cfg.Secrets)
		a.Spec = spec
		r.emit(Event{Kind: EventStarted, TaskID: t.def.ID, Attempt: t.attempts})
		if err != nil { // resolved before the run started, so only a Lookup that changed its mind
			now := time.Now()
			res := &executor.Result{Failure: executor.FailureInternal, ExitCode: -1, Err: err, Error: err.Error(), Started: now, Finished: now}
			go func() { r.done <- finished{idx: i, res: res} }()
			continue
		}
		go func() { r.done <- finished{idx: i, res: r.cfg.Executor.Execute(ctx, a)} }()
	}
}

func (r *runner) finish(f finished, cancelled bool) {
	t := r.tasks[f.idx]
	res := f.res
	if !r.masker.Empty() { // whatever the Executor, the report never shows a value
		res.Output, res.Error = r.masker.Bytes(res.Output), r.masker.String(res.Error)
	}
	d := res.Finished.Sub(res.Started)
	t.report.Duration += d
	t.report.ExitCode = res.ExitCode
	t.report.HTTPStatus = res.HTTPStatus
	t.report.Output = res.Output
	ev := Event{TaskID: t.def.ID, Attempt: t.attempts, Duration: d}
	switch {
	case res.Succeeded:
		t.report.Error = ""
		r.setFinal(f.idx, Succeeded, dag.OutcomeSucceeded)
		ev.Kind = EventSucceeded
	case cancelled || res.Failure == executor.FailureCancelled:
		t.report.Error = res.Error
		r.setFinal(f.idx, Cancelled, dag.OutcomeCancelled)
		ev.Kind, ev.Error = EventCancelled, res.Error
	default:
		t.report.Error = res.Error
		ev.Error = res.Error
		if delay, again := t.policy.Next(t.attempts, r.cfg.Rand); again && !res.NoRetry {
			t.state = RetryWait
			t.dueAt = time.Now().Add(delay)
			r.waiting = append(r.waiting, f.idx)
			ev.Kind, ev.Delay = EventRetrying, delay
			r.emit(ev)
			return
		}
		r.setFinal(f.idx, Failed, dag.OutcomeFailed)
		ev.Kind = EventFailed
	}
	r.emit(ev)
	if !cancelled {
		r.apply(r.wf.Graph.Affected(f.idx, r.outcome))
	}
}

func (r *runner) emit(e Event) {
	if r.cfg.OnEvent == nil {
		return
	}
	e.Time = time.Now()
	e.Done, e.Total = r.final, len(r.tasks)
	r.cfg.OnEvent(e)
}

func isFinal(s State) bool {
	switch s {
	case Succeeded, Failed, UpstreamFailed, Skipped, Cancelled:
		return true
	}
	return false
}

// rankHeap orders ready task indexes by topological rank.
type rankHeap struct {
	items []int
	rank  func(int) int
}

func (h rankHeap) Len() int           { return len(h.items) }
func (h rankHeap) Less(a, b int) bool { return h.rank(h.items[a]) < h.rank(h.items[b]) }
func (h rankHeap) Swap(a, b int)      { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *rankHeap) Push(x any)        { h.items = append(h.items, x.(int)) }
func (h *rankHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
