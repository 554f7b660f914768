package workerapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
	"github.com/cairn-io/cairn/services/scheduler/internal/leadership"
)

// Limits on what a worker may declare.
const (
	// MaxCapacity bounds a worker's capacity (its per-stream buffers grow with it).
	MaxCapacity = 4096
	// MaxIDLength bounds worker, attempt and result ids.
	MaxIDLength = 128
	// DefaultHeartbeatInterval is what SchedulerWelcome asks workers to use.
	DefaultHeartbeatInterval = 5 * time.Second
)

// Metrics is what the server reports; nil records nothing.
type Metrics interface {
	WorkerConnected(delta int)
}

// Config configures a Server.
type Config struct {
	// State says whether this replica leads (required).
	State *leadership.State
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics; nil records nothing.
	Metrics Metrics
	// HeartbeatInterval is sent to workers in SchedulerWelcome; zero means the default.
	HeartbeatInterval time.Duration
	// Secrets reads the values workers ask for (SecretsRequest); nil: every request is
	// answered with an error.
	Secrets SecretSource
}

// Server implements cairnv1.WorkerServiceServer.
type Server struct {
	cairnv1.UnimplementedWorkerServiceServer
	cfg Config
	log *slog.Logger
	// readers tracks the goroutines blocked in Recv: they end shortly after their handler
	// returned (gRPC cancels the stream then). Wait waits for them.
	readers sync.WaitGroup
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.State == nil {
		return nil, errors.New("workerapi: State is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "workerapi")}, nil
}

// Wait waits for the stream readers of handlers that have returned. Call it after the gRPC
// server stopped.
func (s *Server) Wait() { s.readers.Wait() }

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// session checks a hello and builds the engine's view of the stream from it.
func session(h *cairnv1.WorkerHello) (*engine.Session, []engine.Result, error) {
	switch {
	case h.GetWorkerId() == "":
		return nil, nil, invalid("hello.worker_id is empty")
	case len(h.GetWorkerId()) > MaxIDLength:
		return nil, nil, invalid("hello.worker_id is %d bytes long, at most %d", len(h.GetWorkerId()), MaxIDLength)
	case h.GetCapacity() < 1 || h.GetCapacity() > MaxCapacity:
		return nil, nil, invalid("hello.capacity is %d, must be within 1..%d", h.GetCapacity(), MaxCapacity)
	case len(h.GetPool()) > MaxIDLength:
		return nil, nil, invalid("hello.pool is %d bytes long, at most %d", len(h.GetPool()), MaxIDLength)
	case len(h.GetRunning()) > int(h.GetCapacity())+MaxCapacity:
		return nil, nil, invalid("hello.running lists %d attempts for a capacity of %d", len(h.GetRunning()), h.GetCapacity())
	}
	pool := h.GetPool()
	if pool == "" {
		pool = dag.DefaultPool
	}
	capacity := int(h.GetCapacity())
	sess := &engine.Session{WorkerID: h.GetWorkerId(), Pool: pool, Capacity: capacity,
		Out: make(chan engine.Outbound, 2*capacity+64)}
	for i, ra := range h.GetRunning() {
		if ra.GetAttemptId() == "" {
			return nil, nil, invalid("hello.running[%d].attempt_id is empty", i)
		}
		if ra.GetFencingToken() <= 0 {
			return nil, nil, invalid("hello.running[%d].fencing_token is %d, must be positive", i, ra.GetFencingToken())
		}
		sess.Running = append(sess.Running, engine.RunningAttempt{AttemptID: ra.GetAttemptId(), Token: ra.GetFencingToken()})
	}
	var results []engine.Result
	for i, pr := range h.GetPendingResults() {
		r, err := result(pr, fmt.Sprintf("hello.pending_results[%d]", i))
		if err != nil {
			return nil, nil, invalid("%v", err)
		}
		results = append(results, r)
	}
	return sess, results, nil
}

// checkIdentity requires the hello's worker id to be the name in the client certificate
// (spiffe://cairn/worker/<id>): a worker is who its certificate says. A plaintext connection
// (the scheduler's insecure mode, loopback only) has no identity to check.
func checkIdentity(ctx context.Context, workerID string) error {
	id, err := tlsconf.IdentityFromPeer(ctx)
	switch {
	case errors.Is(err, tlsconf.ErrNoTLS):
		return nil
	case err != nil:
		return status.Errorf(codes.Unauthenticated, "a worker certificate (spiffe://cairn/worker/<id>) is required: %v", err)
	case id.Role != tlsconf.RoleWorker:
		return status.Errorf(codes.PermissionDenied, "%s is not a worker", id)
	case id.Name != workerID:
		return status.Errorf(codes.PermissionDenied, "hello.worker_id %q is not the worker named by the client certificate (%s)", workerID, id)
	}
	return nil
}

// errStreamEnded: the worker closed its side of the stream.
var errStreamEnded = errors.New("worker closed the stream")

// Connect serves one worker's stream (see the package documentation).
func (s *Server) Connect(stream cairnv1.WorkerService_ConnectServer) error {
	term, err := s.cfg.State.Current()
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return invalid("the stream ended before hello")
		}
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return invalid("the first message must be hello, got %s", kind(first))
	}
	sess, results, err := session(hello)
	if err != nil {
		return err
	}
	if err := checkIdentity(stream.Context(), hello.GetWorkerId()); err != nil {
		return err
	}
	sess.Seen(time.Now())
	log := s.log.With("worker", sess.WorkerID, "pool", sess.Pool, "epoch", term.Epoch)
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	sess.Kick = func(err error) { cancel(err) }
	sess.Done = ctx.Done()

	eng := term.Engine
	if err := eng.Attach(ctx, sess, results); err != nil {
		if errors.Is(err, engine.ErrStreamAlive) {
			log.Warn("second stream refused: the worker's stream is alive", "err", err)
			return status.Error(codes.AlreadyExists, err.Error())
		}
		eng.Detach(sess) // it may have been attached before Attach gave up
		return s.status(err)
	}
	defer eng.Detach(sess)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.WorkerConnected(1)
		defer s.cfg.Metrics.WorkerConnected(-1)
	}
	log.Info("worker stream attached", "capacity", sess.Capacity, "running", len(sess.Running), "pending_results", len(results))

	sec := newSecretsServer(s.cfg.Secrets, eng, sess, log)
	sendDone := make(chan error, 1)
	go func() { sendDone <- s.send(ctx, stream, sess, eng, sec, term.Holder) }()
	recvDone := make(chan error, 1)
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		recvDone <- s.read(ctx, stream, sess, eng, sec, log)
		// The reader alone starts secrets requests; they end with the stream's context.
		sec.wait()
	}()

	var end error
	senderRunning := true
	select {
	case end = <-recvDone:
	case end = <-sendDone:
		senderRunning = false
	case <-ctx.Done():
		end = context.Cause(ctx)
	case <-eng.Done():
		end = engine.ErrNotLeader
	}
	cancel(end)
	if senderRunning {
		<-sendDone
	}
	if errors.Is(end, errStreamEnded) {
		log.Info("worker stream closed by the worker")
		return nil
	}
	log.Info("worker stream ended", "reason", end)
	return s.status(end)
}

// send forwards the engine's messages to the worker. It is the only caller of stream.Send.
func (s *Server) send(ctx context.Context, stream cairnv1.WorkerService_ConnectServer, sess *engine.Session, eng *engine.Engine,
	sec *secretsServer, holder string) error {
	for {
		select {
		case m := <-sec.out: // the values of one attempt's secrets: sent, never logged
			if err := stream.Send(m); err != nil {
				return fmt.Errorf("send to worker: %w", err)
			}
		case m := <-sess.Out:
			pm := outbound(m, holder, s.cfg.HeartbeatInterval)
			if pm == nil {
				continue
			}
			if err := stream.Send(pm); err != nil {
				return fmt.Errorf("send to worker: %w", err)
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-eng.Done():
			return engine.ErrNotLeader
		}
	}
}

// read feeds the worker's messages to the engine. It is the only caller of stream.Recv.
func (s *Server) read(ctx context.Context, stream cairnv1.WorkerService_ConnectServer, sess *engine.Session, eng *engine.Engine,
	sec *secretsServer, log *slog.Logger) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errStreamEnded
		}
		if err != nil {
			return err
		}
		sess.Seen(time.Now())
		if err := s.handle(ctx, msg, sess, eng, sec, log); err != nil {
			return err
		}
	}
}

func (s *Server) handle(ctx context.Context, msg *cairnv1.WorkerMessage, sess *engine.Session, eng *engine.Engine,
	sec *secretsServer, log *slog.Logger) error {
	switch m := msg.GetMsg().(type) {
	case *cairnv1.WorkerMessage_SecretsRequest:
		return sec.request(ctx, m.SecretsRequest)
	case *cairnv1.WorkerMessage_Credits:
		n := m.Credits.GetFreeSlots()
		if n < 1 || int(n) > sess.Capacity {
			return invalid("credits.free_slots is %d, must be within 1..%d (the worker's capacity)", n, sess.Capacity)
		}
		return eng.Credits(ctx, sess, int(n))
	case *cairnv1.WorkerMessage_Started:
		st := m.Started
		if st.GetAttemptId() == "" {
			return invalid("started.attempt_id is empty")
		}
		if st.GetFencingToken() <= 0 {
			return invalid("started.fencing_token is %d, must be positive", st.GetFencingToken())
		}
		at := timeOf(st.GetStartedAt())
		if at.IsZero() {
			at = time.Now()
		}
		return eng.Started(ctx, sess, st.GetFencingToken(), at)
	case *cairnv1.WorkerMessage_Result:
		r, err := result(m.Result, "result")
		if err != nil {
			return invalid("%v", err)
		}
		log.Debug("result", "run_id", m.Result.GetRunId(), "task_id", m.Result.GetTaskId(), "attempt_id", r.AttemptID,
			"token", r.Token, "succeeded", r.Succeeded)
		return eng.Result(ctx, sess, r)
	case *cairnv1.WorkerMessage_Heartbeat:
		log.Debug("heartbeat", "running", len(m.Heartbeat.GetRunning()))
		return nil
	case *cairnv1.WorkerMessage_Draining:
		log.Info("worker drains", "reason", m.Draining.GetReason())
		return eng.Draining(ctx, sess)
	case *cairnv1.WorkerMessage_Hello:
		return invalid("hello may only be the first message of a stream")
	}
	return invalid("empty worker message: exactly one of hello, credits, started, heartbeat, result, draining, secrets_request must be set")
}

// status translates how a stream ended into the status the worker sees.
func (s *Server) status(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, engine.ErrNotLeader):
		if _, cur := s.cfg.State.Current(); cur != nil {
			return cur
		}
		return status.Error(codes.Unavailable, "leadership changed; reconnect to the leader")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "stream cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "stream deadline exceeded")
	}
	// The engine ended the session (replaced by a newer stream, too slow a reader, lease
	// expired): the worker reconnects.
	return status.Error(codes.Aborted, err.Error())
}

func kind(m *cairnv1.WorkerMessage) string {
	switch m.GetMsg().(type) {
	case *cairnv1.WorkerMessage_Credits:
		return "credits"
	case *cairnv1.WorkerMessage_Started:
		return "started"
	case *cairnv1.WorkerMessage_Heartbeat:
		return "heartbeat"
	case *cairnv1.WorkerMessage_Result:
		return "result"
	case *cairnv1.WorkerMessage_Draining:
		return "draining"
	case *cairnv1.WorkerMessage_SecretsRequest:
		return "secrets_request"
	}
	return "an empty message"
}
