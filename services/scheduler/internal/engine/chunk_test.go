package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// wideYAML is n independent noop tasks.
func wideYAML(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  - {id: t%03d, type: noop}\n", i)
	}
	return b.String()
}

// runEachOnce runs the run to its end on a four-slot worker and checks that it succeeded with
// one attempt per task, each of its tasks queued exactly once, and the store's invariants.
func runEachOnce(t *testing.T, h *harness, id uuid.UUID, tasks int) {
	t.Helper()
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	d := w.runAll(id, nil)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s: %v", d.Run.State, taskStates(d))
	}
	for _, tr := range d.Tasks {
		if tr.State != model.TaskSucceeded || tr.Attempt != 1 {
			t.Errorf("task %s: %s after %d attempts, want SUCCEEDED after 1", tr.TaskID, tr.State, tr.Attempt)
		}
	}
	assertQueuedOnce(t, h, id, tasks)
	assertInvariants(t, h.st, id)
}

// countStates returns how many of the run's tasks are in each state.
func (h *harness) countStates(id uuid.UUID) map[model.TaskState]int {
	h.t.Helper()
	d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[model.TaskState]int{}
	for _, tr := range d.Tasks {
		out[tr.State]++
	}
	return out
}

// waitQueued polls until n of the run's tasks are QUEUED.
func (h *harness) waitQueued(id uuid.UUID, n int) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := h.countStates(id)
		if c[model.TaskQueued] == n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: %v, want %d QUEUED", id, c, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// perTransaction returns, for the run's task runs in state, the largest number that share
// one updated_at (now() is the transaction's start time, so one value is one transaction)
// and how many distinct values there are.
func (h *harness) perTransaction(id uuid.UUID, state model.TaskState) (largest, transactions int) {
	h.t.Helper()
	err := h.st.Pool().QueryRow(context.Background(), `SELECT COALESCE(max(n), 0), count(*) FROM (
		SELECT count(*) AS n FROM task_runs WHERE run_id = $1 AND state = $2 GROUP BY updated_at) x`,
		id, string(state)).Scan(&largest, &transactions)
	if err != nil {
		h.t.Fatal(err)
	}
	return largest, transactions
}

// assertQueuedOnce checks that every task of the run was moved to QUEUED exactly once.
func assertQueuedOnce(t *testing.T, h *harness, id uuid.UUID, tasks int) {
	t.Helper()
	var n, distinct int
	err := h.st.Pool().QueryRow(context.Background(), `SELECT count(*), count(DISTINCT task_id) FROM events
		WHERE run_id = $1 AND kind = 'task_state' AND to_state = 'QUEUED'`, id).Scan(&n, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if n != tasks || distinct != tasks {
		t.Fatalf("%d QUEUED events for %d distinct tasks, want %d each", n, distinct, tasks)
	}
}

func TestWideRunIsPlannedInChunks(t *testing.T) {
	const tasks, chunk = 50, 7
	h := newHarness(t, func(h *harness) { h.planChunk = chunk })
	wf := h.apply(wideYAML("wide", tasks))
	id := h.startRun(wf, nil)
	h.waitQueued(id, tasks)

	largest, txs := h.perTransaction(id, model.TaskQueued)
	if largest > chunk {
		t.Errorf("one transaction queued %d tasks, want at most the plan chunk %d", largest, chunk)
	}
	if want := (tasks + chunk - 1) / chunk; txs < want {
		t.Errorf("tasks queued in %d transactions, want at least %d", txs, want)
	}
	if d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id); err != nil || d.Run.State != model.RunRunning {
		t.Fatalf("run is %s (%v) while its tasks are queued, want RUNNING", d.Run.State, err)
	}

	runEachOnce(t, h, id, tasks)
}

// A failed head decides its whole fan-out at once (UPSTREAM_FAILED) and, through the
// cascade, the join after it; deferred in chunks, the decisions keep their order.
func TestFanOutFailureIsPlannedInChunks(t *testing.T) {
	const fan, chunk = 30, 4
	h := newHarness(t, func(h *harness) { h.planChunk = chunk })
	var b strings.Builder
	b.WriteString("name: fan\ntasks:\n  - {id: head, type: noop}\n")
	deps := make([]string, fan)
	for i := range fan {
		deps[i] = fmt.Sprintf("f%02d", i)
		fmt.Fprintf(&b, "  - {id: f%02d, type: noop, depends_on: [head]}\n", i)
	}
	fmt.Fprintf(&b, "  - {id: join, type: noop, trigger_rule: all_done, depends_on: [%s]}\n", strings.Join(deps, ", "))
	wf := h.apply(b.String())
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	if a.TaskID != "head" {
		t.Fatalf("first assignment %s, want head", a.TaskID)
	}
	w.started(a)
	w.finish(a, false, "boom") // retries: 0 → DEAD_LETTERED
	w.credits(1)
	d := w.runAll(id, nil)
	if d.Run.State != model.RunFailed {
		t.Fatalf("run %s, want FAILED: %v", d.Run.State, taskStates(d))
	}
	states := taskStates(d)
	for _, dep := range deps {
		if states[dep] != model.TaskUpstreamFailed {
			t.Errorf("task %s is %s, want UPSTREAM_FAILED", dep, states[dep])
		}
	}
	if states["join"] != model.TaskSucceeded {
		t.Errorf("join is %s, want SUCCEEDED (all_done)", states["join"])
	}
	if largest, _ := h.perTransaction(id, model.TaskUpstreamFailed); largest > chunk {
		t.Errorf("one transaction decided %d tasks, want at most the plan chunk %d", largest, chunk)
	}
	// The join ran after every fan-out task was decided, not before.
	var early int
	err := h.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events f, events j
		WHERE f.run_id = $1 AND j.run_id = $1 AND f.to_state = 'UPSTREAM_FAILED' AND j.task_id = 'join'
			AND j.to_state = 'QUEUED' AND f.seq > j.seq`, id).Scan(&early)
	if err != nil {
		t.Fatal(err)
	}
	if early != 0 {
		t.Errorf("join was queued before %d of its upstream tasks were decided", early)
	}
	assertInvariants(t, h.st, id)
}

// pauser holds the engine on its loop after its first non-empty commit once armed (at
// once by default) until resumed.
type pauser struct {
	armed      atomic.Bool
	paused     chan struct{}
	resume     chan struct{}
	pauseOnce  sync.Once
	resumeOnce sync.Once
}

func newPauser() *pauser {
	p := &pauser{paused: make(chan struct{}), resume: make(chan struct{})}
	p.armed.Store(true)
	return p
}

func (p *pauser) hook() {
	if p.armed.Load() {
		p.pauseOnce.Do(func() { close(p.paused); <-p.resume })
	}
}

func (p *pauser) arm() { p.armed.Store(true) }

func (p *pauser) release() { p.resumeOnce.Do(func() { close(p.resume) }) }

// wait returns once the engine is paused.
func (p *pauser) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.paused:
	case <-time.After(10 * time.Second):
		t.Fatal("no commit")
	}
}

// A leader deposed between two chunks of a run's start leaves the run RUNNING with some
// tasks QUEUED and the rest PENDING; the next leader plans the rest, and every task runs
// exactly once.
func TestFailoverInTheMiddleOfAChunkedStart(t *testing.T) {
	const tasks, chunk = 60, 10
	p := newPauser()
	h := newHarness(t, func(h *harness) { h.planChunk, h.afterCommit = chunk, p.hook })
	t.Cleanup(p.release) // runs before the harness stops the engine
	wf := h.apply(wideYAML("wide", tasks))
	id := h.startRun(wf, nil)
	p.wait(t) // the first chunk is committed; the engine waits before its next batch
	if c := h.countStates(id); c[model.TaskQueued] != chunk || c[model.TaskPending] != tasks-chunk {
		t.Fatalf("after the first chunk: %v, want %d QUEUED and %d PENDING", c, chunk, tasks-chunk)
	}
	// A new leader takes office behind this one's back.
	if _, err := h.st.TakeLeadership(context.Background(), 2, "test-2"); err != nil {
		t.Fatal(err)
	}
	p.release()
	select {
	case err := <-h.errc:
		if !errors.Is(err, store.ErrStaleEpoch) {
			t.Fatalf("deposed engine returned %v, want ErrStaleEpoch", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deposed engine kept running")
	}
	if c := h.countStates(id); c[model.TaskQueued] != chunk {
		t.Fatalf("the deposed leader wrote more: %v", c)
	}

	h.epoch, h.afterCommit = 2, nil
	h.start()
	h.waitQueued(id, tasks)
	runEachOnce(t, h, id, tasks)
}

// Cancelling a run whose start is still being planned cancels every task, the deferred
// ones included, and queues nothing afterwards.
func TestCancelDuringChunkedStart(t *testing.T) {
	const tasks, chunk = 60, 10
	p := newPauser()
	h := newHarness(t, func(h *harness) { h.planChunk, h.afterCommit = chunk, p.hook })
	t.Cleanup(p.release)
	wf := h.apply(wideYAML("wide", tasks))
	id := h.startRun(wf, nil)
	p.wait(t)
	if c := h.countStates(id); c[model.TaskPending] == 0 {
		t.Fatalf("after the first chunk: %v, want some tasks still PENDING", c)
	}
	done := make(chan error, 1)
	go func() { done <- h.eng.CancelRun(context.Background(), model.DefaultNamespace, id, "test") }()
	h.waitQueuedInput() // the call is on the engine's input channel while the engine is paused
	p.release()
	if err := <-done; err != nil {
		t.Fatalf("cancel: %v", err)
	}
	c := h.countStates(id)
	if c[model.TaskCancelled] != tasks {
		t.Fatalf("after cancel: %v, want all %d CANCELLED", c, tasks)
	}
	// Nothing is planned for the cancelled run afterwards. Deferred planning runs at the
	// start of every loop iteration, before its inputs; a query (Workers writes nothing) is
	// answered while its iteration's inputs are handled, so once a second query is answered,
	// the iteration that answered the first — after the cancel — has committed.
	for range 2 {
		if _, err := h.eng.Workers(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if c := h.countStates(id); c[model.TaskCancelled] != tasks {
		t.Fatalf("after cancel, later: %v", c)
	}
	d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	if err != nil || d.Run.State != model.RunCancelled {
		t.Fatalf("run %s (%v), want CANCELLED", d.Run.State, err)
	}
}

// A new leader process (cold workflow cache) rebuilds its runs one at a time from one
// snapshot; with a pool of a single connection it must not wait for a second one.
func TestRebuildWithOneConnectionAndAColdCache(t *testing.T) {
	const tasks, chunk = 40, 8
	h := newHarness(t, func(h *harness) {
		url := pgtest.NewDatabase(t)
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		pool, err := pgxpool.New(context.Background(), url+sep+"pool_max_conns=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		h.st = store.New(pool)
		h.wfs = engine.NewWorkflowCache(h.st)
		h.planChunk = chunk
	})
	wf := h.apply(wideYAML("wide", tasks))
	queued := h.startRun(wf, nil)
	h.waitQueued(queued, tasks)
	other := h.startRun(h.apply(diamond), nil)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.epoch, h.wfs = 2, engine.NewWorkflowCache(h.st) // a new process knows no workflow yet
	h.start()                                         // fails the test if the rebuild does not finish
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	for _, id := range []uuid.UUID{queued, other} {
		d := w.runAll(id, nil)
		if d.Run.State != model.RunSucceeded {
			t.Fatalf("run %s: %s %v", id, d.Run.State, taskStates(d))
		}
		assertInvariants(t, h.st, id)
	}
}

// A dead letter replayed while the UPSTREAM_FAILED decisions its failure implied are still
// deferred: those decisions are stale (the upstream task runs again) and must not be
// applied; the fan-out waits for the replayed task and then runs.
func TestReplayWhileDecisionsAreDeferred(t *testing.T) {
	const fan, chunk = 20, 4
	p := newPauser()
	p.armed.Store(false)
	h := newHarness(t, func(h *harness) { h.planChunk, h.afterCommit = chunk, p.hook })
	t.Cleanup(p.release)
	var b strings.Builder
	b.WriteString("name: fan\ntasks:\n  - {id: head, type: noop}\n")
	for i := range fan {
		fmt.Fprintf(&b, "  - {id: f%02d, type: noop, depends_on: [head]}\n", i)
	}
	wf := h.apply(b.String())
	w := h.worker("w1", "default", 1, nil, nil)
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)
	// Arm only once the start is committed: armed earlier, the pause would catch the start's
	// own batch and the result below would never be acknowledged.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if at, err := h.st.GetAttempt(context.Background(), a.Token); err == nil && at.State == model.AttemptRunning {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("attempt never recorded as started: %+v %v", at, err)
		}
	}
	p.arm()
	w.finish(a, false, "boom") // DEAD_LETTERED; the fan-out is decided UPSTREAM_FAILED, in chunks
	p.wait(t)
	if c := h.countStates(id); c[model.TaskUpstreamFailed] != chunk || c[model.TaskPending] != fan-chunk {
		t.Fatalf("after the result's batch: %v, want %d UPSTREAM_FAILED and %d PENDING", c, chunk, fan-chunk)
	}
	open, err := h.st.OpenDeadLetters(context.Background(), model.DefaultNamespace, id)
	if err != nil || len(open) != 1 {
		t.Fatalf("open dead letters %v, %v", open, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, open["head"])
		done <- err
	}()
	h.waitQueuedInput() // the call is on the engine's input channel while the engine is paused
	p.release()
	if err := <-done; err != nil {
		t.Fatalf("replay: %v", err)
	}
	w.credits(1)
	d := w.runAll(id, nil)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s, want SUCCEEDED after the replay: %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, id)
}

// A new leader that cannot read the workflow version of some active runs leaves those runs
// as they are (each logged) and rebuilds the others.
func TestRebuildLeavesRunsOfAnUnreadableVersion(t *testing.T) {
	h := newHarness(t)
	bad := h.apply("name: bad\ntasks:\n  - {id: x, type: noop}\n")
	left := []uuid.UUID{h.startRun(bad, nil), h.startRun(bad, nil)}
	for _, id := range left {
		h.waitQueued(id, 1)
	}
	good := h.startRun(h.apply(diamond), nil)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Pool().Exec(context.Background(),
		`UPDATE workflow_versions SET yaml = 'name: bad' || chr(10) || 'tasks: [' WHERE workflow = 'bad'`); err != nil {
		t.Fatal(err)
	}
	h.epoch, h.wfs = 2, engine.NewWorkflowCache(h.st) // a new process: the version must be read
	h.start()                                         // fails the test if the rebuild does not finish
	w := h.worker("w1", "default", 4, nil, nil)
	w.credits(4)
	if d := w.runAll(good, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s: %s %v", good, d.Run.State, taskStates(d))
	}
	for _, id := range left {
		d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Run.State != model.RunRunning || len(d.Tasks) != 1 || d.Tasks[0].State != model.TaskQueued || d.Tasks[0].Attempt != 0 {
			t.Errorf("run %s of the unreadable version: %s %v, want left RUNNING with x QUEUED", id, d.Run.State, taskStates(d))
		}
	}
}

// waitQueuedInput waits until an input waits on the (paused) engine's channel.
func (h *harness) waitQueuedInput() {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); engine.QueuedInputs(h.eng) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatal("the call never reached the engine's input channel")
		}
	}
}
