package worker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
)

const (
	failed    = cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED
	succeeded = cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED
	cancelled = cairnv1.FailureKind_FAILURE_KIND_CANCELLED
)

func TestHelloAssignmentStartedResult(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	startWorker(t, srv, func(c *Config) {
		c.Pool, c.Labels = "gpu", map[string]string{"zone": "a"}
	})

	p := leader.accept(t)
	h := p.hello
	if h.GetWorkerId() != "w1" || h.GetCapacity() != 2 || h.GetPool() != "gpu" || h.GetLabels()["zone"] != "a" ||
		h.GetVersion() == "" || h.GetAddress() == "" || h.GetStartedAt() == nil {
		t.Fatalf("hello = %v", h)
	}
	if len(h.GetRunning()) != 0 || len(h.GetPendingResults()) != 0 {
		t.Fatalf("a fresh worker's hello lists work: %v", h)
	}
	lease, ok := workerKey(t, cli, "w1")
	if !ok || lease == 0 || lease != h.GetLeaseId() {
		t.Fatalf("etcd key lease %x (exists %v), hello lease %x", lease, ok, h.GetLeaseId())
	}

	p.welcome(t, nil, nil)
	if n := p.awaitCredits(t); n != 2 {
		t.Fatalf("first grant = %d credits, want the capacity 2", n)
	}

	p.assign(t, shell("a1", 11, `echo out; echo err >&2; echo "$CAIRN_RUN_ID/$CAIRN_TASK_ID/$CAIRN_ATTEMPT"; exit 3`, nil))
	if st := p.awaitStarted(t, "a1"); st.GetFencingToken() != 11 || st.GetStartedAt() == nil {
		t.Fatalf("started = %v", st)
	}
	r1 := p.awaitResult(t, "a1")
	if r1.GetOutcome() != failed || r1.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_EXIT_CODE ||
		r1.ExitCode == nil || r1.GetExitCode() != 3 || r1.GetFencingToken() != 11 || r1.GetResultId() == "" ||
		r1.GetRunId() != "run-1" || r1.GetTaskId() != "task-a1" || r1.HttpStatus != nil {
		t.Fatalf("result = %v", r1)
	}
	if got := string(r1.GetOutput()); got != "out\nerr\nrun-1/task-a1/1\n" {
		t.Fatalf("output = %q", got)
	}

	p.assign(t, &cairnv1.Assignment{AttemptId: "a2", RunId: "run-1", TaskId: "t2", Attempt: 2, FencingToken: 12,
		Spec: &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_SHELL,
			Kind: &cairnv1.TaskSpec_Shell{Shell: &cairnv1.ShellTaskSpec{Argv: []string{"echo", "ok"}}}}})
	r2 := p.awaitResult(t, "a2")
	if r2.GetOutcome() != succeeded || r2.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED ||
		r2.GetExitCode() != 0 || r2.ExitCode == nil || string(r2.GetOutput()) != "ok\n" || r2.GetError() != "" {
		t.Fatalf("result = %v", r2)
	}

	// Each result handed to the outbox (which has room for capacity results) frees its slot.
	for i := range 2 {
		if n := p.awaitCredits(t); n != 1 {
			t.Fatalf("grant after result %d = %d, want 1", i+1, n)
		}
	}
	p.ack(t, r1, true)
	p.ack(t, r2, false)
	if got := p.creditsGranted(); got != 4 {
		t.Fatalf("credits granted in total = %d, want 4 (2 + 1 + 1)", got)
	}

	// A malformed assignment fails with INTERNAL, naming the problem.
	p.assign(t, &cairnv1.Assignment{AttemptId: "a3", RunId: "run-1", TaskId: "t3", Attempt: 1, FencingToken: 13,
		Spec: &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_HTTP}})
	r3 := p.awaitResult(t, "a3")
	if r3.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_INTERNAL || !strings.Contains(r3.GetError(), "http task without http settings") {
		t.Fatalf("result of a malformed assignment = %v", r3)
	}
	p.ack(t, r3, true) // else the drain at the end of the test waits for it
}

func TestAssignmentsBeyondCreditsAreHandedBack(t *testing.T) {
	srv := etcdtest.Start(t)
	leader := startLeader(t)
	leader.campaign(t, srv.Client(t))
	startWorker(t, srv, func(c *Config) { c.Concurrency = 1 })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	if n := p.awaitCredits(t); n != 1 {
		t.Fatalf("grant = %d, want 1", n)
	}
	p.assign(t, shell("a1", 1, "sleep 0.3; echo one", nil))
	p.assign(t, shell("a2", 2, "echo two", nil))
	p.assign(t, shell("a3", 3, "echo three", nil))
	for _, id := range []string{"a2", "a3"} {
		r := p.awaitResult(t, id)
		if r.GetOutcome() != failed || r.GetFailureKind() != cancelled || !strings.Contains(r.GetError(), "no credit") {
			t.Fatalf("result of an assignment beyond the credits = %v", r)
		}
	}
	r1 := p.awaitResult(t, "a1")
	if r1.GetOutcome() != succeeded || string(r1.GetOutput()) != "one\n" {
		t.Fatalf("result of the covered assignment = %v", r1)
	}
	for _, m := range p.all() {
		if id := m.GetStarted().GetAttemptId(); id == "a2" || id == "a3" {
			t.Fatalf("an assignment beyond the credits was started: %v", m)
		}
	}
	if n := p.awaitCredits(t); n != 1 {
		t.Fatalf("grant once the result is in the outbox = %d, want 1", n)
	}
	p.ack(t, r1, true)
	if got := p.creditsGranted(); got != 2 {
		t.Fatalf("credits granted = %d, want 2", got)
	}
}

// The outbox holds up to capacity results without holding slots; each result beyond those
// keeps its slot until an acknowledgement, so the outbox stays within 2 × capacity.
func TestOutboxBeyondCapacityHoldsSlots(t *testing.T) {
	srv := etcdtest.Start(t)
	leader := startLeader(t)
	leader.campaign(t, srv.Client(t))
	startWorker(t, srv, func(c *Config) { c.Concurrency = 1 })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	if n := p.awaitCredits(t); n != 1 {
		t.Fatalf("grant = %d, want 1", n)
	}
	p.assign(t, shell("a1", 1, "echo one", nil))
	r1 := p.awaitResult(t, "a1")
	if n := p.awaitCredits(t); n != 1 {
		t.Fatalf("grant with one result awaiting its ack = %d, want 1", n)
	}
	p.assign(t, shell("a2", 2, "echo two", nil))
	r2 := p.awaitResult(t, "a2")
	// Two results await acknowledgement, one more than the capacity: the slot stays held,
	// so a further assignment finds no credit and is handed back without running.
	p.assign(t, shell("a3", 3, "echo three", nil))
	if r := p.awaitResult(t, "a3"); r.GetFailureKind() != cancelled || !strings.Contains(r.GetError(), "no credit") {
		t.Fatalf("assignment while the outbox is over capacity = %v", r)
	}
	p.ack(t, r1, true)
	if n := p.awaitCredits(t); n != 1 {
		t.Fatalf("grant after an ack brought the outbox back to capacity = %d, want 1", n)
	}
	p.ack(t, r2, true)
	if got := p.creditsGranted(); got != 3 {
		t.Fatalf("credits granted = %d, want 3", got)
	}
	for _, m := range p.all() {
		if m.GetStarted().GetAttemptId() == "a3" {
			t.Fatalf("an assignment beyond the outbox bound was started: %v", m)
		}
	}
}

func TestResultResentAndRunningAttemptReadoptedAcrossLeaders(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	a, b := startLeader(t), startLeader(t)
	a.campaign(t, cli)
	b.campaignAsync(t, cli) // waits behind a
	startWorker(t, srv, nil)

	pa := a.accept(t)
	pa.welcome(t, nil, nil)
	pa.awaitCredits(t)
	pa.assign(t, shell("quick", 1, "echo quick", nil))
	quick := pa.awaitResult(t, "quick") // never acknowledged by a
	long, pidfile := sleeper(t, "long", 2)
	pa.assign(t, long)
	pa.awaitStarted(t, "long")
	pid := pidOf(t, pidfile)

	// The stream breaks: the worker reconnects to a (still the leader) and says it all again.
	pa.drop(nil)
	pa2 := a.accept(t)
	if !hasResult(pa2.hello, quick.GetResultId()) || !hasRunning(pa2.hello, "long", 2) {
		t.Fatalf("hello after a dropped stream = %v", pa2.hello)
	}

	// a steps down, b leads: the worker follows the election to b.
	a.elector.Stop()
	pb := b.accept(t)
	if !hasResult(pb.hello, quick.GetResultId()) || !hasRunning(pb.hello, "long", 2) || len(pb.hello.GetPendingResults()) != 1 {
		t.Fatalf("hello to the new leader = %v", pb.hello)
	}
	if got := pb.hello.GetPendingResults()[0]; got.GetOutcome() != succeeded || string(got.GetOutput()) != "quick\n" {
		t.Fatalf("resent result = %v", got)
	}
	if !alive(pid) {
		t.Fatal("the running attempt did not survive the reconnects")
	}
	pb.welcome(t, []*cairnv1.AttemptRef{{AttemptId: "long", FencingToken: 2}}, nil)
	// Capacity 2 = one running + one result awaiting an ack, which holds no slot (the
	// outbox has room for 2): one credit at once.
	if n := pb.awaitCredits(t); n != 1 {
		t.Fatalf("grant after the welcome = %d, want 1", n)
	}
	pb.ack(t, quick, true)
	hb := pb.await(t, "heartbeat listing long", func(m *cairnv1.WorkerMessage) bool {
		return slices.ContainsFunc(m.GetHeartbeat().GetRunning(), func(r *cairnv1.AttemptRef) bool { return r.GetAttemptId() == "long" })
	})
	if hb.GetHeartbeat().GetSentAt() == nil {
		t.Fatalf("heartbeat without a time: %v", hb)
	}
	pb.cancel(t, "long", 2, "test done")
	r := pb.awaitResult(t, "long")
	if r.GetFailureKind() != cancelled {
		t.Fatalf("result of the adopted attempt = %v", r)
	}
	if n := pb.awaitCredits(t); n != 1 {
		t.Fatalf("grant once the adopted attempt's result is in the outbox = %d, want 1", n)
	}
	pb.ack(t, r, true)
	if got := pb.creditsGranted(); got != 2 {
		t.Fatalf("credits granted to b = %d, want 2", got)
	}
}

func hasResult(h *cairnv1.WorkerHello, resultID string) bool {
	return slices.ContainsFunc(h.GetPendingResults(), func(r *cairnv1.AttemptResult) bool { return r.GetResultId() == resultID })
}

func hasRunning(h *cairnv1.WorkerHello, attemptID string, token int64) bool {
	return slices.ContainsFunc(h.GetRunning(), func(r *cairnv1.RunningAttempt) bool {
		return r.GetAttemptId() == attemptID && r.GetFencingToken() == token && r.GetRunId() != "" && r.GetTaskId() != "" && r.GetAttempt() == 1
	})
}

func TestCancelKillsTheProcess(t *testing.T) {
	srv := etcdtest.Start(t)
	leader := startLeader(t)
	leader.campaign(t, srv.Client(t))
	startWorker(t, srv, nil)

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	a, pidfile := sleeper(t, "a1", 7)
	p.assign(t, a)
	pid := pidOf(t, pidfile)
	p.cancel(t, "a1", 6, "outdated token")
	p.cancel(t, "a1", 7, "run cancelled by the user")
	r := p.awaitResult(t, "a1")
	if r.GetOutcome() != failed || r.GetFailureKind() != cancelled ||
		!strings.Contains(r.GetError(), "run cancelled by the user") || strings.Contains(r.GetError(), "outdated") {
		t.Fatalf("result = %v", r)
	}
	if alive(pid) {
		t.Fatalf("process %d still alive after the cancel", pid)
	}
	p.ack(t, r, true)
}

func TestWelcomeRejectionStopsAttemptWithoutResult(t *testing.T) {
	srv := etcdtest.Start(t)
	leader := startLeader(t)
	leader.campaign(t, srv.Client(t))
	startWorker(t, srv, func(c *Config) { c.Concurrency = 1 })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	a, pidfile := sleeper(t, "a1", 5)
	p.assign(t, a)
	pid := pidOf(t, pidfile)
	p.drop(nil)

	p2 := leader.accept(t)
	if !hasRunning(p2.hello, "a1", 5) {
		t.Fatalf("hello = %v", p2.hello)
	}
	p2.welcome(t, nil, []*cairnv1.AttemptRef{{AttemptId: "a1", FencingToken: 5}})
	// The slot comes back once the attempt is gone, in the same step that would have sent its
	// result: so when the credit arrives, a result would already be there.
	if n := p2.awaitCredits(t); n != 1 {
		t.Fatalf("grant = %d, want 1", n)
	}
	for _, m := range p2.all() {
		if m.GetResult() != nil {
			t.Fatalf("a rejected attempt reported a result: %v", m)
		}
	}
	if alive(pid) {
		t.Fatalf("rejected attempt's process %d still alive", pid)
	}
}

func TestLeaseLossKillsAttemptsAndReregisters(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	startWorker(t, srv, func(c *Config) { c.Concurrency = 1 })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	a, pidfile := sleeper(t, "a1", 9)
	p.assign(t, a)
	pid := pidOf(t, pidfile)

	// Another etcd client revokes the worker's lease, as an expiry would.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	oldLease := p.hello.GetLeaseId()
	if _, err := cli.Revoke(ctx, clientv3LeaseID(oldLease)); err != nil {
		t.Fatal(err)
	}

	select {
	case <-p.done:
	case <-time.After(waitLimit):
		t.Fatal("the worker kept its stream after losing its lease")
	}
	p2 := leader.accept(t)
	if alive(pid) {
		t.Fatalf("process %d survived the lease loss", pid)
	}
	h := p2.hello
	if h.GetLeaseId() == 0 || h.GetLeaseId() == oldLease || len(h.GetRunning()) != 0 || len(h.GetPendingResults()) != 1 {
		t.Fatalf("hello after re-registering = %v", h)
	}
	if r := h.GetPendingResults()[0]; r.GetAttemptId() != "a1" || r.GetFailureKind() != cancelled || !strings.Contains(r.GetError(), "lease lost") {
		t.Fatalf("result of the killed attempt = %v", r)
	}
	if lease, ok := workerKey(t, cli, "w1"); !ok || lease != h.GetLeaseId() {
		t.Fatalf("etcd key lease %x (exists %v), want the new lease %x", lease, ok, h.GetLeaseId())
	}
	p2.welcome(t, nil, nil)
	p2.ack(t, h.GetPendingResults()[0], false)
	if n := p2.awaitCredits(t); n != 1 {
		t.Fatalf("grant after re-registering = %d, want 1", n)
	}
}

func TestDrainLetsRunningAttemptFinish(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	w := startWorker(t, srv, nil)

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	p.assign(t, shell("a1", 1, "sleep 1; echo done", nil))
	p.awaitStarted(t, "a1")

	w.cancel() // what SIGTERM does
	p.await(t, "draining", func(m *cairnv1.WorkerMessage) bool { return m.GetDraining() != nil })
	// The leader still had a credit when it learned of the drain: the assignment it sent
	// meanwhile is handed back, not run.
	p.assign(t, shell("late", 2, "echo late", nil))
	late := p.awaitResult(t, "late")
	if late.GetFailureKind() != cancelled || !strings.Contains(late.GetError(), "draining") {
		t.Fatalf("result of an assignment received while draining = %v", late)
	}
	p.ack(t, late, true)
	r := p.awaitResult(t, "a1")
	if r.GetOutcome() != succeeded || string(r.GetOutput()) != "done\n" {
		t.Fatalf("result of the drained attempt = %v", r)
	}
	if _, ok := workerKey(t, cli, "w1"); !ok {
		t.Fatal("the key vanished before the results were acknowledged")
	}
	p.ack(t, r, true)
	if err := w.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after a drain", err)
	}
	if _, ok := workerKey(t, cli, "w1"); ok {
		t.Fatal("etcd key still present after the drain")
	}
	draining := slices.IndexFunc(p.all(), func(m *cairnv1.WorkerMessage) bool { return m.GetDraining() != nil })
	for _, m := range p.all()[draining:] {
		if m.GetCredits() != nil {
			t.Fatalf("credits granted after draining: %v", m)
		}
	}
}

func TestDrainTimeoutCancelsAttempt(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	w := startWorker(t, srv, func(c *Config) { c.DrainTimeout = 300 * time.Millisecond })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	a, pidfile := sleeper(t, "a1", 3)
	p.assign(t, a)
	pid := pidOf(t, pidfile)
	w.cancel()
	r := p.awaitResult(t, "a1")
	if r.GetFailureKind() != cancelled || !strings.Contains(r.GetError(), "drain timeout") {
		t.Fatalf("result = %v", r)
	}
	if alive(pid) {
		t.Fatalf("process %d survived the drain timeout", pid)
	}
	p.ack(t, r, true)
	if err := w.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, ok := workerKey(t, cli, "w1"); ok {
		t.Fatal("etcd key still present after the drain")
	}
}

func TestLeaderDrainStopsWorker(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	w := startWorker(t, srv, nil)

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Drain{Drain: &cairnv1.DrainWorker{Reason: "node maintenance"}}})
	d := p.await(t, "draining", func(m *cairnv1.WorkerMessage) bool { return m.GetDraining() != nil })
	if !strings.Contains(d.GetDraining().GetReason(), "node maintenance") {
		t.Fatalf("draining = %v", d)
	}
	if err := w.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, ok := workerKey(t, cli, "w1"); ok {
		t.Fatal("etcd key still present after the drain")
	}
}

func TestWorkerWaitsForALeader(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	w := startWorker(t, srv, nil)
	waitUntil(t, "registration", func() bool { _, ok := workerKey(t, cli, "w1"); return ok })
	// A leader elected later is found through the election.
	leader := startLeader(t)
	leader.campaign(t, cli)
	p := leader.accept(t)
	if p.hello.GetWorkerId() != "w1" {
		t.Fatalf("hello = %v", p.hello)
	}
	w.cancel()
	if err := w.wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestAcknowledgementBeforeWelcomeIsApplied(t *testing.T) {
	srv := etcdtest.Start(t)
	leader := startLeader(t)
	leader.campaign(t, srv.Client(t))
	startWorker(t, srv, func(c *Config) { c.Concurrency = 1 })

	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)
	p.assign(t, shell("a1", 1, "echo hi", nil))
	r := p.awaitResult(t, "a1")
	p.drop(nil)

	p2 := leader.accept(t)
	if !hasResult(p2.hello, r.GetResultId()) {
		t.Fatalf("hello = %v", p2.hello)
	}
	// A leader that acknowledges the hello's results before welcoming the worker.
	p2.ack(t, r, true)
	p2.welcome(t, nil, nil)
	if n := p2.awaitCredits(t); n != 1 {
		t.Fatalf("grant = %d, want 1 (the acknowledged result's slot)", n)
	}
	select {
	case <-p2.done:
		t.Fatal("the worker dropped a stream whose welcome followed an ack")
	default:
	}
}

// A worker killed mid-attempt leaves its scratch directories behind; the next incarnation of
// the same worker id removes them once it has registered (not before: an older process with
// the same id might still hold the registration and use them).
func TestLeftoverScratchRemovedAfterRegistration(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	root := t.TempDir()
	leftover := filepath.Join(root, "cairn-attempt-123")
	if err := os.MkdirAll(filepath.Join(leftover, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	startWorker(t, srv, func(c *Config) { c.ScratchRoot = root })
	waitUntil(t, "registration", func() bool { _, ok := workerKey(t, cli, "w1"); return ok })
	waitUntil(t, "leftover removed", func() bool { _, err := os.Stat(leftover); return os.IsNotExist(err) })
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("the scratch root itself must stay: %v", err)
	}
}
