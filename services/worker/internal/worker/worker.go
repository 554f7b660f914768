package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/credentials"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/egress"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/mask"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/opsserver"
	"github.com/cairn-io/cairn/pkg/retry"
	"github.com/cairn-io/cairn/pkg/telemetry"
)

// Causes with which the worker stops an attempt or a stream. Attempts stopped by the worker
// end with executor.FailureCancelled; Result.Error carries one of these.
var (
	// ErrCancelledByLeader: the leader sent CancelAttempt.
	ErrCancelledByLeader = errors.New("cancelled by the leader")
	// ErrRejectedByLeader: a new leader's welcome did not recognise the attempt.
	ErrRejectedByLeader = errors.New("rejected by the leader on reconnect")
	// ErrLeaseLost: the worker's etcd registration was lost; the leader re-runs its attempts.
	ErrLeaseLost = errors.New("worker lease lost")
	// ErrDrainTimeout: the attempt did not finish within the drain timeout.
	ErrDrainTimeout = errors.New("worker drain timeout exceeded")

	errLeaderChanged  = errors.New("leader changed")
	errSendQueueFull  = errors.New("send queue full (stream stuck)")
	errStopRegistered = errors.New("stopped before registering")
)

// Run runs a worker until ctx is cancelled (SIGTERM) or the leader asks it to drain, then
// drains (see the package doc) and returns nil. It returns an error only when the worker
// cannot start (bad configuration, the ops address taken) or its registration is refused as
// invalid.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		l, err := telemetry.NewLogger(cfg.LogFormat, cfg.LogLevel, cfg.LogOutput)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		log = l
	}
	// Every line the worker logs is masked with the secret values its running attempts hold
	// (see secrets.go): an error or an attribute that carries one shows *** instead.
	masks := mask.NewRegistry()
	log = slog.New(mask.NewHandler(log.Handler(), masks.Masker))
	base := log
	log = log.With(slog.String("worker", cfg.ID))

	tel, err := telemetry.Setup(ctx, telemetry.Config{Service: "cairn-worker", Version: Version, InstanceID: cfg.ID, OTLPEndpoint: cfg.OTLPEndpoint})
	if err != nil {
		return fmt.Errorf("worker %s: %w", cfg.ID, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", slog.Any("error", err))
		}
	}()

	if err := os.MkdirAll(cfg.ScratchRoot, 0o700); err != nil {
		return fmt.Errorf("worker %s: scratch directory: %w", cfg.ID, err)
	}
	task, err := cfg.taskUser()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	var baseEnv []string
	if task.cred != nil {
		// The task user enters its own attempt directory but cannot list the others.
		if err := os.Chmod(cfg.ScratchRoot, 0o711); err != nil {
			return fmt.Errorf("worker %s: scratch directory: %w", cfg.ID, err)
		}
		tmp, err := taskTempDir(cfg.ScratchRoot+"-tmp", task.cred)
		if err != nil {
			return fmt.Errorf("worker %s: the task user's TMPDIR: %w", cfg.ID, err)
		}
		baseEnv = taskEnv(task.home, tmp)
		log.Info("shell tasks run as another user", slog.String("task_user", task.name), slog.Uint64("uid", uint64(task.cred.Uid)))
	} else if os.Geteuid() == 0 && !cfg.Insecure {
		log.Warn("shell tasks run as root, as --task-user says: they can read the worker's key and certificate")
	}
	exec, err := executor.New(executor.Config{AllowedWorkdirRoots: cfg.WorkdirRoots, ScratchDir: cfg.ScratchRoot,
		OutputCap: cfg.OutputCap, KillGrace: cfg.KillGrace, EgressAllow: cfg.EgressAllow,
		TaskCredential: task.cred, BaseEnv: baseEnv})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}

	etcd, err := etcdclient.New(cfg.EtcdEndpoints, cfg.Etcd)
	if err != nil {
		return fmt.Errorf("worker %s: etcd client for %v: %w", cfg.ID, cfg.EtcdEndpoints, err)
	}
	defer func() { _ = etcd.Close() }()

	w := newWorker(cfg, log, etcd, exec)
	w.baseLog, w.masks = base, masks
	if w.creds, err = cfg.leaderCredentials(); err != nil {
		return err
	}
	if w.creds != nil {
		log.Info("connects to the leader with mutual TLS", slog.String("cert", cfg.TLSCert),
			slog.String("scheduler_server_name", cfg.SchedulerServerName))
	} else {
		log.Warn("insecure mode: the stream to the leader is plaintext (loopback only)")
	}
	if err := w.metrics.register(tel.Meter("github.com/cairn-io/cairn/services/worker"), w); err != nil {
		return fmt.Errorf("worker %s: metrics: %w", cfg.ID, err)
	}
	w.tel = tel

	w.addr = cfg.AdvertiseAddr
	if cfg.OpsAddr != "" {
		ops, err := opsserver.New(opsserver.Config{Addr: cfg.OpsAddr, Metrics: tel.Handler(), Logger: log})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
		if err := errors.Join(ops.AddCheck("etcd-registration", w.checkRegistered), ops.AddCheck("accepting-work", w.checkAccepting)); err != nil {
			return fmt.Errorf("worker %s: ops checks: %w", cfg.ID, err)
		}
		if err := ops.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("worker %s: %w", cfg.ID, err)
		}
		defer ops.Stop()
		if w.addr == "" {
			w.addr = advertised(ops.Addr().String())
		}
		log.Info("ops server listening", slog.String("addr", ops.Addr().String()))
	}
	if w.addr == "" {
		w.addr = advertised("")
	}
	return w.run(ctx)
}

// taskEnv is the executor's default base environment with the task user's HOME and TMPDIR.
func taskEnv(home, tmp string) []string {
	env := executor.DefaultBaseEnv()
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TMPDIR=") {
			out = append(out, kv)
		}
	}
	if home != "" {
		out = append(out, "HOME="+home)
	}
	return append(out, "TMPDIR="+tmp)
}

// taskTempDir makes dir the task user's own (0700): its TMPDIR, kept across attempts (a
// workflow's tasks may pass files through it) and never shared with the worker's user.
func taskTempDir(dir string, cred *syscall.Credential) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o700)
}

// advertised replaces an unspecified or missing host by the hostname.
func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host != "" && !net.ParseIP(host).IsUnspecified() {
		return addr
	}
	name, herr := os.Hostname()
	if herr != nil || name == "" {
		name = "localhost"
	}
	if err != nil || port == "" {
		return name
	}
	return net.JoinHostPort(name, port)
}

// attempt is one attempt this worker runs.
type attempt struct {
	asg     *cairnv1.Assignment
	typ     executor.Type
	cancel  context.CancelCauseFunc
	started time.Time
	// discard: a welcome rejected it; it is being stopped and its result is dropped.
	discard bool
	log     *slog.Logger
}

func (a *attempt) ref() *cairnv1.AttemptRef {
	return &cairnv1.AttemptRef{AttemptId: a.asg.GetAttemptId(), FencingToken: a.asg.GetFencingToken()}
}

// Worker is the state of one running worker. Everything below mu is guarded by it.
//
// Slot accounting: a slot is busy from the assignment that takes it until the attempt's result
// is in the outbox, and the outbox has room for capacity results that hold no slot; each
// result beyond those keeps a slot busy until an acknowledgement. So, with credits those
// granted on the current stream and not yet used,
//
//	len(running) + credits + max(0, len(outbox) - capacity) ≤ capacity
//
// at all times: the outbox never holds more than 2 × capacity results.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	baseLog *slog.Logger // without the worker attribute (membership adds its own)
	etcd    *clientv3.Client
	exec    executor.Executor
	metrics metrics
	tel     *telemetry.Telemetry
	addr    string
	started time.Time
	creds   credentials.TransportCredentials // towards the leader; nil: plaintext (insecure mode)
	masks   *mask.Registry                   // the secret values of the running attempts, masked in the logs

	attemptsCtx context.Context // parent of every attempt; outlives SIGTERM, ends with Run
	attemptsWG  sync.WaitGroup  // attempt goroutines

	scratchOnce sync.Once // leftovers of an earlier incarnation are removed after the first registration
	drainOnce   sync.Once
	drainReq    chan struct{} // closed when the leader asks for a drain
	drainReason string        // written before drainReq is closed

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every state change (see notifyLocked)
	reg         *membership.Registration
	leaseID     int64
	leaseLost   bool
	draining    bool
	leader      election.Leadership
	sess        *session // the stream Hello was sent on; nil between streams
	credits     int      // granted on sess, not yet used by an assignment
	running     map[string]*attempt
	outbox      []*cairnv1.AttemptResult // results not yet acknowledged, oldest first
	maxOutput   int64
	heartbeat   time.Duration
	welcomedAny bool
	// secretWaits are the attempts waiting for a SecretsResponse, by request id.
	secretWaits map[string]chan *cairnv1.SecretsResponse
}

func newWorker(cfg Config, log *slog.Logger, etcd *clientv3.Client, exec executor.Executor) *Worker {
	return &Worker{
		cfg: cfg, log: log, baseLog: log, etcd: etcd, exec: exec, started: time.Now(),
		drainReq: make(chan struct{}), changed: make(chan struct{}),
		running: map[string]*attempt{}, heartbeat: cfg.Heartbeat, metrics: newMetrics(),
		masks: mask.NewRegistry(), secretWaits: map[string]chan *cairnv1.SecretsResponse{},
	}
}

// notifyLocked wakes everyone waiting for a state change. Call with mu held.
func (w *Worker) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// freeLocked is the number of slots neither running, nor promised, nor held by a result
// beyond the outbox's free share (see Worker).
func (w *Worker) freeLocked() int {
	return w.cfg.Concurrency - len(w.running) - w.credits - max(0, len(w.outbox)-w.cfg.Concurrency)
}

// grantLocked grants every free slot to the leader of the current stream, if the worker
// takes work and the stream was welcomed.
func (w *Worker) grantLocked() {
	s := w.sess
	if s == nil || !s.welcomed || w.draining || w.leaseLost {
		return
	}
	if n := w.freeLocked(); n > 0 {
		w.credits += n
		s.send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Credits{Credits: &cairnv1.WorkerCredits{FreeSlots: int32(n)}}})
	}
}

// waitFor waits until cond (called with mu held) is true, the deadline passes (zero: none)
// or abort fires. It reports whether cond became true.
func (w *Worker) waitFor(deadline time.Time, abort <-chan struct{}, cond func() bool) bool {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		w.mu.Lock()
		ok, ch := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			w.mu.Lock()
			defer w.mu.Unlock()
			return cond()
		case <-abort:
			return false
		}
	}
}

// requestDrain starts a drain on the leader's request.
func (w *Worker) requestDrain(reason string) {
	w.drainOnce.Do(func() {
		w.drainReason = reason
		close(w.drainReq)
	})
}

// run is the worker's life: register, serve, re-register after a lost lease, drain.
func (w *Worker) run(ctx context.Context) error {
	attemptsCtx, killAttempts := context.WithCancelCause(context.WithoutCancel(ctx))
	w.attemptsCtx = attemptsCtx
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer func() {
		stopBackground()
		bg.Wait()
		killAttempts(errors.New("worker stopped"))
		w.attemptsWG.Wait()
	}()

	// stop ends once SIGTERM arrived or the leader asked for a drain.
	stop := make(chan struct{})
	bg.Add(1)
	go func() {
		defer bg.Done()
		select {
		case <-ctx.Done():
		case <-w.drainReq:
		case <-bgCtx.Done():
		}
		close(stop)
	}()

	leaders, err := election.Observe(bgCtx, w.etcd, w.cfg.EtcdPrefix)
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.cfg.ID, err)
	}
	bg.Add(2)
	go func() { defer bg.Done(); w.followLeader(leaders) }()
	go func() { defer bg.Done(); w.connectLoop(bgCtx) }()

	w.log.Info("worker starting", slog.Int("concurrency", w.cfg.Concurrency), slog.String("pool", w.cfg.Pool),
		slog.Any("labels", w.cfg.Labels), slog.String("version", Version), slog.Duration("lease_ttl", w.cfg.LeaseTTL),
		slog.String("egress_allow", egress.FormatAllowList(w.cfg.EgressAllow)))

	var reg *membership.Registration
serve:
	for {
		reg, err = w.register(stop)
		if errors.Is(err, errStopRegistered) {
			break serve
		}
		if err != nil {
			return err
		}
		select {
		case <-reg.Lost():
			w.onLeaseLost(reg)
			reg = nil
		case <-stop:
			break serve
		}
	}
	w.drain(ctx, reg)
	return nil
}

// register registers the worker in etcd, retrying with backoff until it succeeds or stop
// fires (errStopRegistered). An invalid registration is returned at once.
func (w *Worker) register(stop <-chan struct{}) (*membership.Registration, error) {
	info := membership.Info{ID: w.cfg.ID, Address: w.addr, Pool: w.cfg.Pool, Labels: w.cfg.Labels,
		Capacity: w.cfg.Concurrency, Version: Version, Started: w.started}
	backoff := retry.Policy{Initial: w.cfg.ReconnectMin, Max: w.cfg.ReconnectMax, Multiplier: 2, Jitter: true}
	for failures := 0; ; failures++ {
		reg, leaseID, err := w.registerOnce(info)
		if err == nil {
			w.mu.Lock()
			w.reg, w.leaseID, w.leaseLost = reg, leaseID, false
			w.notifyLocked()
			w.mu.Unlock()
			w.log.Info("registered in etcd", slog.String("key", reg.Key()), slog.String("lease", fmt.Sprintf("%x", leaseID)))
			return reg, nil
		}
		if errors.Is(err, membership.ErrInvalid) {
			return nil, fmt.Errorf("worker %s: %w", w.cfg.ID, err)
		}
		if errors.Is(err, membership.ErrAlreadyRegistered) {
			w.log.Warn("worker id still registered (a previous incarnation's lease has not expired, or another worker uses this id); retrying", slog.Any("error", err))
		} else {
			w.log.Warn("cannot register in etcd; retrying", slog.Any("error", err))
		}
		t := time.NewTimer(max(backoff.Delay(failures, nil), w.cfg.ReconnectMin))
		select {
		case <-stop:
			t.Stop()
			return nil, errStopRegistered
		case <-t.C:
		}
	}
}

func (w *Worker) registerOnce(info membership.Info) (*membership.Registration, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := membership.Register(ctx, w.etcd, info, w.cfg.LeaseTTL,
		membership.WithPrefix(w.cfg.EtcdPrefix), membership.WithLogger(w.baseLog))
	if err != nil {
		return nil, 0, err
	}
	// The registration does not expose its lease; the key carries it (the hello reports it so
	// the leader can watch it).
	resp, err := w.etcd.Get(ctx, reg.Key())
	if err == nil && len(resp.Kvs) == 0 {
		err = fmt.Errorf("key %s vanished right after registering", reg.Key())
	}
	if err != nil {
		_ = reg.Close()
		return nil, 0, fmt.Errorf("read lease of %s: %w", reg.Key(), err)
	}
	// Registered: no earlier process with this id holds a lease any more, so whatever its
	// attempts left in the scratch root (it was killed before it could clean up) is garbage.
	w.scratchOnce.Do(w.cleanScratch)
	return reg, resp.Kvs[0].Lease, nil
}

// cleanScratch removes what an earlier incarnation of this worker id left in the scratch root.
func (w *Worker) cleanScratch() {
	entries, err := os.ReadDir(w.cfg.ScratchRoot)
	if err != nil {
		w.log.Warn("cannot read the scratch directory", slog.String("dir", w.cfg.ScratchRoot), slog.Any("error", err))
		return
	}
	removed := 0
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(w.cfg.ScratchRoot, e.Name())); err != nil {
			w.log.Warn("cannot remove a leftover scratch directory", slog.String("path", e.Name()), slog.Any("error", err))
			continue
		}
		removed++
	}
	if removed > 0 {
		w.log.Info("removed scratch directories left by an earlier incarnation", slog.Int("count", removed), slog.String("dir", w.cfg.ScratchRoot))
	}
}

// onLeaseLost stops taking work, kills every running attempt (the leader has declared them
// lost and re-runs them; their results, kept in the outbox, will be recorded as stale), waits
// for them to end and releases the old registration. The caller registers again.
func (w *Worker) onLeaseLost(reg *membership.Registration) {
	w.mu.Lock()
	w.leaseLost, w.reg = true, nil
	if w.sess != nil {
		w.sess.cancel(ErrLeaseLost)
	}
	n := len(w.running)
	for _, a := range w.running {
		a.cancel(fmt.Errorf("%w: the leader has re-queued this attempt", ErrLeaseLost))
	}
	w.notifyLocked()
	w.mu.Unlock()
	w.metrics.leaseLost.Add(context.Background(), 1)
	w.log.Error("WORKER LEASE LOST: the etcd registration is gone; taking no work and killing every running attempt (the leader re-runs them elsewhere; their results will be reported and recorded as stale), then registering again",
		slog.Any("cause", reg.Err()), slog.Int("running", n))
	w.waitFor(time.Time{}, nil, func() bool { return len(w.running) == 0 })
	if err := reg.Close(); err != nil {
		w.log.Warn("release lost registration", slog.Any("error", err))
	}
}

// drain stops taking work, lets running attempts finish within the drain timeout (then
// cancels them), waits for their results to be acknowledged and revokes the registration.
func (w *Worker) drain(ctx context.Context, reg *membership.Registration) {
	reason := "SIGTERM"
	select {
	case <-w.drainReq:
		reason = "leader: " + w.drainReason
	default:
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			reason = cause.Error()
		}
	}
	start := time.Now()
	deadline := start.Add(w.cfg.DrainTimeout)
	w.mu.Lock()
	w.draining = true
	if w.sess != nil {
		w.sess.send(drainingMsg(reason))
	}
	n := len(w.running)
	w.notifyLocked()
	w.mu.Unlock()
	w.log.Info("draining: taking no new work, waiting for running attempts",
		slog.String("reason", reason), slog.Int("running", n), slog.Duration("drain_timeout", w.cfg.DrainTimeout))

	var lost <-chan struct{}
	if reg != nil {
		lost = reg.Lost()
	}
	idle := func() bool { return len(w.running) == 0 }
	if !w.waitFor(deadline, lost, idle) {
		cause := fmt.Errorf("%w (%v)", ErrDrainTimeout, w.cfg.DrainTimeout)
		select {
		case <-lost:
			cause = ErrLeaseLost
		default:
		}
		w.mu.Lock()
		w.log.Warn("draining: stopping the attempts still running", slog.Int("running", len(w.running)), slog.Any("cause", cause))
		for _, a := range w.running {
			a.cancel(cause)
		}
		w.mu.Unlock()
		w.waitFor(time.Time{}, nil, idle)
	}

	// The results of the last attempts need the leader's acknowledgement; give them the rest
	// of the drain timeout, and at least a second.
	flushBy := deadline
	if soon := time.Now().Add(time.Second); flushBy.Before(soon) {
		flushBy = soon
	}
	if !w.waitFor(flushBy, lost, func() bool { return len(w.outbox) == 0 }) {
		w.mu.Lock()
		w.log.Warn("draining: exiting with unacknowledged results; the leader will mark those attempts lost and re-run them",
			slog.Int("pending_results", len(w.outbox)))
		w.mu.Unlock()
	}
	if reg != nil {
		if err := reg.Close(); err != nil {
			w.log.Warn("revoke registration", slog.Any("error", err))
		}
	}
	w.log.Info("drained", slog.Duration("took", time.Since(start)))
}

func drainingMsg(reason string) *cairnv1.WorkerMessage {
	return &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Draining{Draining: &cairnv1.WorkerDraining{Reason: reason}}}
}

// followLeader keeps w.leader current and ends the stream to a leader that is no longer the
// leader.
func (w *Worker) followLeader(leaders <-chan election.Leadership) {
	for l := range leaders {
		w.mu.Lock()
		if l != w.leader {
			w.leader = l
			if w.sess != nil && w.sess.leader != l {
				w.sess.cancel(errLeaderChanged)
			}
			w.notifyLocked()
		}
		w.mu.Unlock()
		if l.IsZero() {
			w.log.Warn("no leader elected; waiting for one")
		} else {
			w.log.Info("leader", slog.String("addr", l.Value), slog.Int64("epoch", l.Epoch))
		}
	}
}

// checkRegistered is the /readyz check of the etcd registration.
func (w *Worker) checkRegistered(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reg == nil {
		return errors.New("not registered in etcd (starting, etcd unreachable, or lease lost)")
	}
	return nil
}

// checkAccepting is the /readyz check that fails while the worker drains.
func (w *Worker) checkAccepting(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.draining {
		return errors.New("draining")
	}
	return nil
}
