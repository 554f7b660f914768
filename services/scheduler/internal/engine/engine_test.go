package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// harness runs an engine against a real PostgreSQL database. Workers are played by the
// test through engine.Session, exactly as the gRPC stream handler does.
type harness struct {
	t       *testing.T
	st      *store.Store
	epoch   int64
	eng     *engine.Engine
	cancel  context.CancelFunc
	errc    chan error
	metrics *countingMetrics
	version map[string]int
	wfs     *engine.WorkflowCache
	live    *liveSet
	// startDelay is the next engine's Config.StartDelay (zero: the default).
	startDelay time.Duration
	// planChunk is the next engine's Config.PlanChunk (zero: the default).
	planChunk int
	// afterCommit, if set, is installed on the next engine (engine.SetAfterCommit).
	afterCommit func()
}

type liveSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (l *liveSet) set(id string, live bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[id] = live
}

func (l *liveSet) snapshot() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for k, v := range l.m {
		out[k] = v
	}
	return out
}

type countingMetrics struct {
	steals    atomic.Int64
	batches   atomic.Int64
	maxGroups atomic.Int64
}

func (m *countingMetrics) BatchCommitted(groups int, _ time.Duration) {
	m.batches.Add(1)
	for {
		cur := m.maxGroups.Load()
		if int64(groups) <= cur || m.maxGroups.CompareAndSwap(cur, int64(groups)) {
			return
		}
	}
}
func (m *countingMetrics) AttemptFinished(string)         {}
func (m *countingMetrics) RunFinished(string)             {}
func (m *countingMetrics) Steal()                         { m.steals.Add(1) }
func (m *countingMetrics) Dispatched(time.Duration)       {}
func (m *countingMetrics) QueueDepth(string, string, int) {}

// newHarness starts an engine on a fresh database; opts adjust the harness first.
func newHarness(t *testing.T, opts ...func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, st: store.New(pgtest.NewPool(t)), epoch: 1, metrics: &countingMetrics{},
		version: map[string]int{}, live: &liveSet{m: map[string]bool{}}}
	h.wfs = engine.NewWorkflowCache(h.st)
	for _, o := range opts {
		o(h)
	}
	h.start()
	return h
}

// start takes office under h.epoch and runs a new engine.
func (h *harness) start() {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.st.TakeLeadership(ctx, h.epoch, fmt.Sprintf("test-%d", h.epoch)); err != nil {
		h.t.Fatalf("take leadership: %v", err)
	}
	h.eng = engine.New(engine.Config{
		Store: h.st, Epoch: h.epoch, Holder: "test", Workflows: h.wfs, Metrics: h.metrics,
		LiveWorkers: h.live.snapshot, AdoptGrace: 300 * time.Millisecond, AttemptGrace: time.Minute,
		Rand: func() float64 { return 0.5 }, StartDelay: h.startDelay, PlanChunk: h.planChunk,
	})
	if h.afterCommit != nil {
		engine.SetAfterCommit(h.eng, h.afterCommit)
	}
	runCtx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	h.errc = make(chan error, 1)
	eng := h.eng
	go func() { h.errc <- eng.Run(runCtx) }()
	select {
	case <-eng.Ready():
	case err := <-h.errc:
		h.t.Fatalf("engine stopped during rebuild: %v", err)
	case <-time.After(20 * time.Second):
		h.t.Fatal("engine not ready")
	}
	h.t.Cleanup(func() { cancel(); <-eng.Done() })
}

// stop ends the current engine (as if leadership were lost) and returns what Run returned.
func (h *harness) stop() error {
	h.cancel()
	return <-h.errc
}

func (h *harness) apply(yaml string) *dag.Workflow {
	h.t.Helper()
	wf, err := dag.Parse("test.yaml", []byte(yaml), dag.DefaultLimits())
	if err != nil {
		h.t.Fatalf("parse: %v", err)
	}
	v, _, err := h.st.PutVersion(context.Background(), h.epoch, model.DefaultNamespace, wf.Name, wf.Description, yaml, nil)
	if err != nil {
		h.t.Fatalf("put version: %v", err)
	}
	h.version[wf.Name] = v.Version
	return wf
}

func (h *harness) startRun(wf *dag.Workflow, params map[string]string) uuid.UUID {
	h.t.Helper()
	resolved, err := wf.ResolveParams(params)
	if err != nil {
		h.t.Fatal(err)
	}
	ids := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		ids[i] = t.ID
	}
	run, _, err := h.st.CreateRun(context.Background(), h.epoch, model.Run{ID: uuid.New(), Namespace: model.DefaultNamespace, Workflow: wf.Name,
		Version: h.version[wf.Name], Params: resolved, Trigger: model.TriggerManual}, ids)
	if err != nil {
		h.t.Fatalf("create run: %v", err)
	}
	if err := h.eng.PlanRun(context.Background(), run, wf); err != nil {
		h.t.Fatalf("plan run: %v", err)
	}
	return run.ID
}

// waitRun polls PostgreSQL until the run (of the default namespace) is terminal.
func (h *harness) waitRun(id uuid.UUID) store.RunDetail {
	h.t.Helper()
	return h.waitRunIn(model.DefaultNamespace, id)
}

// waitRunIn is waitRun for a run of namespace ns.
func (h *harness) waitRunIn(ns string, id uuid.UUID) store.RunDetail {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.st.GetRun(context.Background(), ns, id)
		if err != nil {
			h.t.Fatal(err)
		}
		if d.Run.State.Terminal() {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s still %s; tasks: %+v", id, d.Run.State, taskStates(d))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func taskStates(d store.RunDetail) map[string]model.TaskState {
	m := map[string]model.TaskState{}
	for _, t := range d.Tasks {
		m[t.TaskID] = t.State
	}
	return m
}

// fakeWorker plays a worker's stream.
type fakeWorker struct {
	h           *harness
	sess        *engine.Session
	assignments chan *engine.Assignment
	acks        chan *engine.Ack
	cancels     chan *engine.Cancel
	welcome     chan *engine.Welcome
	kicked      chan error
}

func (h *harness) worker(id, pool string, capacity int, running []engine.RunningAttempt, pending []engine.Result) *fakeWorker {
	h.t.Helper()
	w := &fakeWorker{h: h, assignments: make(chan *engine.Assignment, 1000), acks: make(chan *engine.Ack, 1000),
		cancels: make(chan *engine.Cancel, 1000), welcome: make(chan *engine.Welcome, 1), kicked: make(chan error, 1)}
	w.sess = &engine.Session{WorkerID: id, Pool: pool, Capacity: capacity, Running: running,
		Out: make(chan engine.Outbound, 2*capacity+64),
		Kick: func(err error) {
			select {
			case w.kicked <- err:
			default:
			}
		}}
	h.live.set(id, true)
	out := w.sess.Out
	go func() {
		for m := range out {
			switch {
			case m.Assignment != nil:
				w.assignments <- m.Assignment
			case m.Ack != nil:
				w.acks <- m.Ack
			case m.Cancel != nil:
				w.cancels <- m.Cancel
			case m.Welcome != nil:
				w.welcome <- m.Welcome
			}
		}
	}()
	if err := h.eng.Attach(context.Background(), w.sess, pending); err != nil {
		h.t.Fatalf("attach: %v", err)
	}
	select {
	case <-w.welcome:
	case <-time.After(10 * time.Second):
		h.t.Fatal("no welcome")
	}
	return w
}

func (w *fakeWorker) credits(n int) {
	w.h.t.Helper()
	if err := w.h.eng.Credits(context.Background(), w.sess, n); err != nil {
		w.h.t.Fatal(err)
	}
}

func (w *fakeWorker) next() *engine.Assignment {
	w.h.t.Helper()
	select {
	case a := <-w.assignments:
		return a
	case <-time.After(10 * time.Second):
		w.h.t.Fatalf("worker %s: no assignment", w.sess.WorkerID)
		return nil
	}
}

func (w *fakeWorker) none(d time.Duration) {
	w.h.t.Helper()
	select {
	case a := <-w.assignments:
		w.h.t.Fatalf("worker %s got unexpected assignment %s/%s", w.sess.WorkerID, a.RunID, a.TaskID)
	case <-time.After(d):
	}
}

func (w *fakeWorker) started(a *engine.Assignment) {
	w.h.t.Helper()
	if err := w.h.eng.Started(context.Background(), w.sess, a.Token, time.Now()); err != nil {
		w.h.t.Fatal(err)
	}
}

func (w *fakeWorker) finish(a *engine.Assignment, ok bool, msg string) *engine.Ack {
	w.h.t.Helper()
	r := engine.Result{ResultID: uuid.NewString(), AttemptID: a.AttemptID.String(), Token: a.Token, Succeeded: ok, Error: msg,
		Started: time.Now(), Finished: time.Now()}
	if !ok {
		r.FailureKind = model.FailureExitCode
		code := 1
		r.ExitCode = &code
	}
	if err := w.h.eng.Result(context.Background(), w.sess, r); err != nil {
		w.h.t.Fatal(err)
	}
	return w.ack(r.ResultID)
}

func (w *fakeWorker) ack(resultID string) *engine.Ack {
	w.h.t.Helper()
	for {
		select {
		case a := <-w.acks:
			if a.ResultID == resultID {
				return a
			}
		case <-time.After(10 * time.Second):
			w.h.t.Fatalf("worker %s: no ack for result %s", w.sess.WorkerID, resultID)
			return nil
		}
	}
}

// runAll plays a worker that succeeds every assignment until the run (of the default
// namespace) ends.
func (w *fakeWorker) runAll(id uuid.UUID, fail map[string]int) store.RunDetail {
	w.h.t.Helper()
	return w.runAllIn(model.DefaultNamespace, id, fail)
}

// runAllIn is runAll for a run of namespace ns.
func (w *fakeWorker) runAllIn(ns string, id uuid.UUID, fail map[string]int) store.RunDetail {
	w.h.t.Helper()
	failures := map[string]int{}
	for {
		select {
		case a := <-w.assignments:
			w.started(a)
			n, bad := fail[a.TaskID]
			if bad && (n < 0 || failures[a.TaskID] < n) {
				failures[a.TaskID]++
				w.finish(a, false, "boom")
			} else {
				w.finish(a, true, "")
			}
			w.credits(1)
		case <-time.After(20 * time.Millisecond):
			d, err := w.h.st.GetRun(context.Background(), ns, id)
			if err != nil {
				w.h.t.Fatal(err)
			}
			if d.Run.State.Terminal() {
				return d
			}
		}
	}
}

const diamond = `
name: diamond
tasks:
  - {id: a, type: noop}
  - {id: b, type: noop, depends_on: [a]}
  - {id: c, type: noop, depends_on: [a]}
  - {id: d, type: noop, depends_on: [b, c]}
`

func TestRunSucceeds(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 2, nil, nil)
	w.credits(2)
	id := h.startRun(wf, nil)
	d := w.runAll(id, nil)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run state %s, tasks %v", d.Run.State, taskStates(d))
	}
	for _, tr := range d.Tasks {
		if tr.State != model.TaskSucceeded || tr.Attempt != 1 {
			t.Errorf("task %s: %s attempt %d", tr.TaskID, tr.State, tr.Attempt)
		}
	}
	assertInvariants(t, h.st, id)
}

const failing = `
name: failing
defaults:
  retries: 2
  backoff: {initial: 10ms, max: 20ms, jitter: false}
tasks:
  - {id: flaky, type: shell, command: ["true"]}
  - {id: broken, type: shell, command: ["false"]}
  - {id: after, type: noop, depends_on: [broken]}
  - {id: cleanup, type: noop, depends_on: [broken], trigger_rule: all_done}
`

func TestRetriesDeadLetterAndPropagation(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(failing)
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	id := h.startRun(wf, nil)
	d := w.runAll(id, map[string]int{"flaky": 2, "broken": -1})
	want := map[string]model.TaskState{"flaky": model.TaskSucceeded, "broken": model.TaskDeadLettered,
		"after": model.TaskUpstreamFailed, "cleanup": model.TaskSucceeded}
	got := taskStates(d)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("task %s = %s, want %s", k, got[k], v)
		}
	}
	if d.Run.State != model.RunFailed {
		t.Fatalf("run state %s, want FAILED", d.Run.State)
	}
	dls, _, err := h.st.ListDeadLetters(context.Background(), model.DefaultNamespace, store.DeadLetterFilter{}, store.PageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].TaskID != "broken" || len(dls[0].Errors) != 3 {
		t.Fatalf("dead letters = %+v, want one for broken with 3 attempt errors", dls)
	}
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 || as[2].State != model.AttemptSucceeded {
		t.Fatalf("flaky attempts = %d (last %v), want 3 ending SUCCEEDED", len(as), as[len(as)-1].State)
	}
	assertInvariants(t, h.st, id)
}

// TestNoRetryResultFailsTheTaskAtOnce: a result marked NoRetry (an egress refusal) fails the
// task after one attempt whatever its retries, without a dead letter; downstream tasks follow
// the trigger rules as for any failure, and a run retry runs it again.
func TestNoRetryResultFailsTheTaskAtOnce(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(`
name: egress
tasks:
  - {id: call, type: http, http: {url: "http://169.254.169.254/"}, retries: 3, backoff: {initial: 1ms, max: 1ms}}
  - {id: after, type: noop, depends_on: [call]}
  - {id: cleanup, type: noop, depends_on: [call], trigger_rule: all_done}
`)
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	id := h.startRun(wf, nil)
	const msg = "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow): GET http://169.254.169.254/"
	a := w.next()
	if a.TaskID != "call" {
		t.Fatalf("first assignment %s", a.TaskID)
	}
	w.started(a)
	r := engine.Result{ResultID: uuid.NewString(), AttemptID: a.AttemptID.String(), Token: a.Token, FailureKind: model.FailureInternal,
		Error: msg, NoRetry: true, Started: time.Now(), Finished: time.Now()}
	if err := h.eng.Result(context.Background(), w.sess, r); err != nil {
		t.Fatal(err)
	}
	w.ack(r.ResultID)
	w.credits(1)
	d := w.runAll(id, nil)
	got := taskStates(d)
	if d.Run.State != model.RunFailed || got["call"] != model.TaskFailed || got["after"] != model.TaskUpstreamFailed || got["cleanup"] != model.TaskSucceeded {
		t.Fatalf("run %s, tasks %v; want FAILED with call FAILED", d.Run.State, got)
	}
	for _, tr := range d.Tasks {
		if tr.TaskID == "call" && (tr.Attempt != 1 || tr.LastError != msg) {
			t.Errorf("call: attempt %d, last error %q", tr.Attempt, tr.LastError)
		}
	}
	as := attemptsOf(t, h, id, "call")
	if len(as) != 1 || as[0].State != model.AttemptFailed || as[0].FailureKind != model.FailureInternal || as[0].Error != msg {
		t.Fatalf("attempts %+v, want one FAILED internal with the refusal", as)
	}
	if open, _ := h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id); len(open) != 0 {
		t.Errorf("dead letters %v, want none", open)
	}
	assertInvariants(t, h.st, id)

	// Once the worker allows the destination, a run retry runs the task again.
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, id); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if d := w.runAll(id, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("after retry: run %s, tasks %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, id)
}

func TestLostWorkerIsRetriedElsewhereAndZombieResultIsStale(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(`
name: one
tasks:
  - {id: only, type: noop}
`)
	w1 := h.worker("w1", "default", 1, nil, nil)
	w1.credits(1)
	id := h.startRun(wf, nil)
	a1 := w1.next()
	w1.started(a1)

	// w1's lease expires: its attempt is lost and re-queued; w2 gets it.
	h.live.set("w1", false)
	if err := h.eng.WorkerGone(context.Background(), "w1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w1.kicked:
	case <-time.After(10 * time.Second):
		t.Fatal("w1's stream was not ended when its lease expired")
	}
	w2 := h.worker("w2", "default", 1, nil, nil)
	w2.credits(1)
	a2 := w2.next()
	if a2.TaskID != "only" || a2.Number != 2 || a2.Token <= a1.Token {
		t.Fatalf("second assignment = %+v, want attempt 2 of only with a newer token", a2)
	}
	// The zombie reports late: rejected as stale.
	if ack := w1.finish(a1, true, ""); ack.Accepted {
		t.Fatal("the zombie's late result was accepted")
	}
	w2.started(a2)
	if ack := w2.finish(a2, true, ""); !ack.Accepted {
		t.Fatalf("current result rejected: %+v", ack)
	}
	d := h.waitRun(id)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "only")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].State != model.AttemptLost || as[0].StaleResultAt.IsZero() || as[1].State != model.AttemptSucceeded {
		t.Fatalf("attempts: %+v", as)
	}
	assertInvariants(t, h.st, id)
}

func TestFailoverReadoptsRunningAttempts(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	if err := h.stop(); err != nil {
		t.Fatalf("engine returned %v on cancel", err)
	}

	// A new leader takes office; the worker reconnects and says it still runs a.
	h.epoch = 2
	h.start()
	w2 := h.worker("w1", "default", 1, []engine.RunningAttempt{{AttemptID: a.AttemptID.String(), Token: a.Token}}, nil)
	// The result is accepted: the attempt was re-adopted, not relaunched.
	if ack := w2.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("re-adopted attempt's result rejected: %+v", ack)
	}
	w2.credits(1)
	d := w2.runAll(id, nil)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s: %v", d.Run.State, taskStates(d))
	}
	as, _ := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "a")
	if len(as) != 1 {
		t.Fatalf("task a ran %d attempts, want 1 (re-adopted)", len(as))
	}
	assertInvariants(t, h.st, id)
}

func TestFailoverLosesAttemptsOfSilentWorkers(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	_ = h.stop()
	h.epoch = 2
	h.start() // w1 is still "live" in etcd but never re-attaches: lost after AdoptGrace.
	w2 := h.worker("w2", "default", 1, nil, nil)
	w2.credits(1)
	b := w2.next()
	if b.TaskID != "a" || b.Number != 2 {
		t.Fatalf("after adopt grace got %s attempt %d, want a attempt 2", b.TaskID, b.Number)
	}
	w2.started(b)
	w2.finish(b, true, "")
	w2.credits(1)
	if d := w2.runAll(id, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	assertInvariants(t, h.st, id)
}

func TestDeposedLeaderWritesNothing(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	// Another leader takes office behind this one's back (this one was paused).
	if _, err := h.st.TakeLeadership(context.Background(), 2, "newer"); err != nil {
		t.Fatal(err)
	}
	before, _ := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	r := engine.Result{ResultID: "r1", AttemptID: a.AttemptID.String(), Token: a.Token, Succeeded: true}
	if err := h.eng.Result(context.Background(), w.sess, r); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.errc:
		if !errors.Is(err, store.ErrStaleEpoch) {
			t.Fatalf("engine stopped with %v, want ErrStaleEpoch", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deposed engine kept running")
	}
	select {
	case ack := <-w.acks:
		t.Fatalf("deposed engine acknowledged a result: %+v", ack)
	default:
	}
	after, _ := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	if fmt.Sprint(taskStates(before)) != fmt.Sprint(taskStates(after)) {
		t.Fatalf("deposed engine changed task states: %v → %v", taskStates(before), taskStates(after))
	}
}

func TestWorkStealingAndExactlyOnce(t *testing.T) {
	h := newHarness(t)
	yaml := "name: wide\ntasks:\n"
	for i := range 40 {
		yaml += fmt.Sprintf("  - {id: t%02d, type: noop}\n", i)
	}
	wf := h.apply(yaml)
	// Three workers, no credits yet: the run's tasks are routed into their queues.
	ws := []*fakeWorker{h.worker("w1", "default", 2, nil, nil), h.worker("w2", "default", 2, nil, nil), h.worker("w3", "default", 2, nil, nil)}
	id := h.startRun(wf, nil)
	// Only w3 works: once its own queue and the backlog are empty it must steal.
	ws[2].credits(2)
	d := ws[2].runAll(id, nil)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	if h.metrics.steals.Load() == 0 {
		t.Fatal("no steals counted although w3 ran tasks routed to w1 and w2")
	}
	ws[0].none(50 * time.Millisecond)
	ws[1].none(0)
	for _, tr := range d.Tasks {
		if tr.Attempt != 1 || tr.State != model.TaskSucceeded {
			t.Errorf("task %s: %s after %d attempts", tr.TaskID, tr.State, tr.Attempt)
		}
	}
	t.Logf("steals: %d, batches: %d, largest batch: %d groups", h.metrics.steals.Load(), h.metrics.batches.Load(), h.metrics.maxGroups.Load())
	assertInvariants(t, h.st, id)
}

func TestMaxActiveTasks(t *testing.T) {
	h := newHarness(t)
	yaml := "name: capped\nmax_active_tasks: 2\ntasks:\n"
	for i := range 8 {
		yaml += fmt.Sprintf("  - {id: t%d, type: noop}\n", i)
	}
	wf := h.apply(yaml)
	w := h.worker("w1", "default", 8, nil, nil)
	w.credits(8)
	id := h.startRun(wf, nil)
	first := []*engine.Assignment{w.next(), w.next()}
	w.none(100 * time.Millisecond) // a third would break max_active_tasks: 2
	for _, a := range first {
		w.started(a)
		w.finish(a, true, "")
		w.credits(1)
	}
	if d := w.runAll(id, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
}

func TestCancelRunStopsRunningAttempts(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	if err := h.eng.CancelRun(context.Background(), model.DefaultNamespace, id, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-w.cancels:
		if c.Token != a.Token {
			t.Fatalf("cancel for token %d, want %d", c.Token, a.Token)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("running attempt was not told to stop")
	}
	d := h.waitRun(id)
	if d.Run.State != model.RunCancelled {
		t.Fatalf("run %s", d.Run.State)
	}
	for _, tr := range d.Tasks {
		if tr.State != model.TaskCancelled {
			t.Errorf("task %s = %s", tr.TaskID, tr.State)
		}
	}
	if err := h.eng.CancelRun(context.Background(), model.DefaultNamespace, id, "again"); !errors.Is(err, engine.ErrTerminal) {
		t.Fatalf("second cancel: %v, want ErrTerminal", err)
	}
	// The worker's late result is stale.
	if ack := w.finish(a, true, ""); ack.Accepted {
		t.Fatal("result of a cancelled attempt accepted")
	}
}

// assertInvariants checks, from PostgreSQL, what must hold after any history: the run is
// terminal, no task has more than one succeeded attempt, no stale attempt counts.
func assertInvariants(t *testing.T, st *store.Store, id uuid.UUID) {
	t.Helper()
	var n int
	// At most one success per opening: a run retry or replay that re-opens a succeeded task
	// (recorded as a SUCCEEDED → PENDING event) allows one more.
	err := st.Pool().QueryRow(context.Background(), `
		SELECT count(*) FROM (
			SELECT a.task_id FROM attempts a WHERE a.run_id = $1 AND a.state = 'SUCCEEDED'
			GROUP BY a.task_id
			HAVING count(*) > 1 + (SELECT count(*) FROM events e WHERE e.run_id = $1 AND e.task_id = a.task_id
				AND e.kind = 'task_state' AND e.from_state = 'SUCCEEDED' AND e.to_state = 'PENDING')) x`, id).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d task(s) have more than one succeeded attempt", n)
	}
	var active int
	if err := st.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM task_runs WHERE run_id = $1 AND state NOT IN ('SUCCEEDED','FAILED','UPSTREAM_FAILED','SKIPPED','CANCELLED','DEAD_LETTERED')`, id).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Errorf("%d task(s) not terminal", active)
	}
}

func TestPoisonGroupIsIsolated(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	// A poison group in the same batch as a good result: the result must still commit.
	if err := h.eng.InjectPoison(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := engine.Result{ResultID: "r1", AttemptID: a.AttemptID.String(), Token: a.Token, Succeeded: false,
		FailureKind: model.FailureExitCode, Error: "worker text with a NUL \x00 and bad UTF-8 \xff"}
	if err := h.eng.Result(context.Background(), w.sess, r); err != nil {
		t.Fatal(err)
	}
	if ack := w.ack("r1"); !ack.Accepted {
		t.Fatalf("result not accepted: %+v", ack)
	}
	// diamond has no retries: a fails for good, the rest is upstream-failed; the point is
	// that the engine went on and committed it all.
	d := h.waitRun(id)
	if got := taskStates(d); d.Run.State != model.RunFailed || got["a"] != model.TaskDeadLettered || got["d"] != model.TaskUpstreamFailed {
		t.Fatalf("run %s, tasks %v; want FAILED with a dead-lettered", d.Run.State, got)
	}
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) < 1 || as[0].Error != "worker text with a NUL \uFFFD and bad UTF-8 \uFFFD" {
		t.Fatalf("first attempt error stored as %q", as[0].Error)
	}
	select {
	case err := <-h.errc:
		t.Fatalf("engine stopped: %v", err)
	default:
	}
}

// TestWelcomeComesFirst: a worker reconnecting with pending results must get its Welcome
// before any acknowledgement (regression: acks went out first and the worker dropped the
// stream, forever).
func TestWelcomeComesFirst(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	_ = h.stop()
	h.epoch = 2
	h.start()
	sess := &engine.Session{WorkerID: "w1", Pool: "default", Capacity: 1, Out: make(chan engine.Outbound, 16), Kick: func(error) {}}
	pending := []engine.Result{{ResultID: "late", AttemptID: a.AttemptID.String(), Token: a.Token, Succeeded: true}}
	if err := h.eng.Attach(context.Background(), sess, pending); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case m := <-sess.Out:
			switch {
			case m.Welcome != nil:
				got = append(got, "welcome")
			case m.Ack != nil:
				got = append(got, fmt.Sprintf("ack(accepted=%v)", m.Ack.Accepted))
			default:
				got = append(got, "other")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("messages so far: %v", got)
		}
	}
	if got[0] != "welcome" || got[1] != "ack(accepted=true)" {
		t.Fatalf("stream began with %v, want [welcome ack(accepted=true)]", got)
	}
}

const retryable = `
name: retryable
tasks:
  - {id: flaky, type: shell, command: ["true"]}
  - {id: broken, type: shell, command: ["false"], retries: 1, backoff: {initial: 1ms, max: 1ms}}
  - {id: after, type: noop, depends_on: [broken]}
  - {id: cleanup, type: noop, depends_on: [broken], trigger_rule: all_done}
`

func attemptsOf(t *testing.T, h *harness, id uuid.UUID, task string) []model.Attempt {
	t.Helper()
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, task)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// failedRun runs retryable with broken failing every attempt: the run FAILS with broken
// dead-lettered after 2 attempts.
func failedRun(t *testing.T, h *harness, w *fakeWorker) uuid.UUID {
	t.Helper()
	id := h.startRun(h.apply(retryable), nil)
	d := w.runAll(id, map[string]int{"broken": -1})
	if got := taskStates(d); d.Run.State != model.RunFailed || got["broken"] != model.TaskDeadLettered || got["after"] != model.TaskUpstreamFailed {
		t.Fatalf("setup: run %s tasks %v", d.Run.State, got)
	}
	return id
}

func TestRetryRunRerunsFailedAndDownstream(t *testing.T) {
	h := newHarness(t)
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	id := failedRun(t, h, w)
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, id); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, id); !errors.Is(err, engine.ErrRunActive) {
		t.Fatalf("retry of a running run: %v, want ErrRunActive", err)
	}
	d := w.runAll(id, nil) // everything succeeds now
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run after retry: %s %v", d.Run.State, taskStates(d))
	}
	want := map[string]int{"flaky": 1, "broken": 3, "after": 1, "cleanup": 2}
	for task, n := range want {
		if got := len(attemptsOf(t, h, id, task)); got != n {
			t.Errorf("%s: %d attempts, want %d (kept if succeeded and not downstream of a re-run task)", task, got, n)
		}
	}
	if open, _ := h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id); len(open) != 0 {
		t.Errorf("dead letter still open after the retry: %v", open)
	}
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, id); !errors.Is(err, engine.ErrNothingToRetry) {
		t.Fatalf("retry of a succeeded run: %v, want ErrNothingToRetry", err)
	}
	assertInvariants(t, h.st, id)
}

func TestReplayDeadLetterOnceWithFreshRetries(t *testing.T) {
	h := newHarness(t)
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	id := failedRun(t, h, w)
	open, err := h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id)
	if err != nil || len(open) != 1 {
		t.Fatalf("open dead letters %v, %v", open, err)
	}
	dl := open["broken"]
	// Ten concurrent replays: exactly one wins.
	var wins, already atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, dl)
			switch {
			case err == nil && run == id:
				wins.Add(1)
			case errors.Is(err, engine.ErrAlreadyReplayed):
				already.Add(1)
			default:
				t.Errorf("replay: run %s err %v", run, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || already.Load() != 9 {
		t.Fatalf("replays: %d won, %d already replayed; want 1 and 9", wins.Load(), already.Load())
	}
	// broken fails again: its retry budget is fresh (2 more attempts), then a new dead letter.
	d := w.runAll(id, map[string]int{"broken": -1})
	if d.Run.State != model.RunFailed {
		t.Fatalf("run %s", d.Run.State)
	}
	if n := len(attemptsOf(t, h, id, "broken")); n != 4 {
		t.Fatalf("broken has %d attempts, want 2 + 2 after the replay", n)
	}
	open, _ = h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id)
	if len(open) != 1 || open["broken"] == dl {
		t.Fatalf("open dead letters after the second failure: %v (first was %s)", open, dl)
	}
	// Replay again, and this time it works.
	if _, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, open["broken"]); err != nil {
		t.Fatal(err)
	}
	if d := w.runAll(id, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run after the second replay: %s %v", d.Run.State, taskStates(d))
	}
	if _, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, open["broken"]); !errors.Is(err, engine.ErrAlreadyReplayed) {
		t.Fatalf("replaying a replayed entry: %v", err)
	}
	if _, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, uuid.New()); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("replaying an unknown entry: %v", err)
	}
	assertInvariants(t, h.st, id)
}

func TestPurgeDeadLetter(t *testing.T) {
	h := newHarness(t)
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	id := failedRun(t, h, w)
	open, _ := h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id)
	if err := h.eng.PurgeDeadLetter(context.Background(), model.DefaultNamespace, open["broken"]); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.PurgeDeadLetter(context.Background(), model.DefaultNamespace, open["broken"]); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("second purge: %v, want ErrNotFound", err)
	}
	d, _ := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	if taskStates(d)["broken"] != model.TaskDeadLettered {
		t.Fatal("purge changed the task")
	}
}

const single = `
name: single
tasks:
  - {id: only, type: noop, timeout: 1h}
`

// A start the engine still holds in memory when the result arrives is written in the
// result's group: one transaction records RUNNING and the outcome, in that order.
func TestQuickResultCarriesTheStart(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.startDelay = time.Hour // never written on its own during this test
	h.epoch = 2
	h.start()
	wf := h.apply(single)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	if ack := w.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("result rejected: %+v", ack)
	}
	d := h.waitRun(id)
	if d.Run.State != model.RunSucceeded || d.Tasks[0].StartedAt.IsZero() {
		t.Fatalf("run %s, task %+v", d.Run.State, d.Tasks[0])
	}
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "only")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].State != model.AttemptSucceeded || as[0].StartedAt.IsZero() ||
		as[0].StartedAt.After(as[0].FinishedAt) || as[0].DeadlineAt.IsZero() {
		t.Fatalf("attempt (want started, then finished, with a deadline): %+v", as)
	}
	evs, err := h.st.EventsSince(context.Background(), model.DefaultNamespace, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range evs {
		if e.TaskID == "only" {
			seq = append(seq, e.From+">"+e.To)
		}
	}
	want := "[PENDING>QUEUED QUEUED>ASSIGNED ASSIGNED>RUNNING RUNNING>SUCCEEDED]"
	if got := fmt.Sprint(seq); got != want {
		t.Fatalf("task events %s, want %s", got, want)
	}
	assertInvariants(t, h.st, id)
}

// A start with no result in the same batch (StartDelay 0) or within StartDelay is written on
// its own; the result then moves the task on from RUNNING.
func TestStartWithoutResultIsWrittenOnItsOwn(t *testing.T) {
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) { testStartWrittenOnItsOwn(t, delay) })
	}
}

func testStartWrittenOnItsOwn(t *testing.T, delay time.Duration) {
	h := newHarness(t)
	if delay != 0 {
		h.stop()
		h.startDelay = delay
		h.epoch = 2
		h.start()
	}
	wf := h.apply(single)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "only")
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 && as[0].State == model.AttemptRunning {
			if as[0].DeadlineAt.IsZero() {
				t.Fatalf("running attempt without a deadline: %+v", as[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("start not written on its own: %+v", as)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.finish(a, true, "")
	if d := h.waitRun(id); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	assertInvariants(t, h.st, id)
}

// Cancelling a run whose attempt's start is still in memory records the start, then the
// cancellation.
func TestCancelWritesAPendingStart(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.startDelay = time.Hour
	h.epoch = 2
	h.start()
	wf := h.apply(single)
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	if err := h.eng.CancelRun(context.Background(), model.DefaultNamespace, id, "test"); err != nil {
		t.Fatal(err)
	}
	as, err := h.st.ListAttempts(context.Background(), model.DefaultNamespace, id, "only")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].State != model.AttemptCancelled || as[0].StartedAt.IsZero() {
		t.Fatalf("attempt: %+v", as)
	}
	assertInvariants(t, h.st, id)
}
