package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/loopback"
	"github.com/cairn-io/cairn/pkg/retry"
)

// Keepalive of the connection to the leader. The leader's server must allow pings this often
// (keepalive.EnforcementPolicy{MinTime ≤ 20s, PermitWithoutStream: true}); otherwise it
// answers with GOAWAY "too_many_pings", the stream breaks and the worker reconnects.
var clientKeepalive = keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// maxHelloOutputBytes bounds the output carried by the pending results of one hello, so that
// it stays well below gRPC's default 4 MiB message limit. Every pending result is listed (the
// leader declares lost any attempt of the worker a hello does not mention); when their
// outputs together exceed this, each is cut to an equal share (see trimOutputs).
const maxHelloOutputBytes = 2 << 20

// session is one Connect stream to one leader.
type session struct {
	leader   election.Leadership
	out      chan *cairnv1.WorkerMessage // drained by the sender goroutine, in order
	cancel   context.CancelCauseFunc
	welcomed bool // guarded by Worker.mu
}

// send queues m without blocking. A full queue means the stream is stuck: the session is
// ended and everything it carried is sent again on the next one (hello, outbox, credits).
func (s *session) send(m *cairnv1.WorkerMessage) {
	select {
	case s.out <- m:
	default:
		s.cancel(errSendQueueFull)
	}
}

// connectLoop keeps one stream open to the current leader while the worker is registered,
// reconnecting with capped exponential backoff and full jitter. The backoff starts over after
// a welcomed stream and whenever the leader changes (address or epoch): a new leader is tried
// at once, and while it is still taking office (UNAVAILABLE) it is retried at the shortest
// delays, so running attempts re-attach within its adoption grace.
func (w *Worker) connectLoop(ctx context.Context) {
	backoff := retry.Policy{Initial: w.cfg.ReconnectMin, Max: w.cfg.ReconnectMax, Multiplier: 2, Jitter: true}
	failures := 0
	var last election.Leadership
	for ctx.Err() == nil {
		w.mu.Lock()
		registered, lead, ch := w.reg != nil, w.leader, w.changed
		w.mu.Unlock()
		if !registered || lead.IsZero() {
			select {
			case <-ctx.Done():
			case <-ch:
			}
			continue
		}
		if lead != last {
			failures, last = 0, lead
		}
		welcomed, err := w.session(ctx, lead)
		if ctx.Err() != nil {
			return
		}
		w.metrics.reconnects.Add(ctx, 1)
		if welcomed {
			failures = 0
		}
		delay := max(backoff.Delay(failures, nil), w.cfg.ReconnectMin/2)
		failures++
		w.log.Warn("stream to leader ended; reconnecting", slog.String("leader", lead.Value),
			slog.Any("error", err), slog.Duration("backoff", delay))
		// Wait out the backoff, unless the leader changes first.
		t := time.NewTimer(delay)
		for waiting := true; waiting; {
			w.mu.Lock()
			moved, ch := w.leader != lead, w.changed
			w.mu.Unlock()
			if moved {
				break
			}
			select {
			case <-ctx.Done():
				waiting = false
			case <-t.C:
				waiting = false
			case <-ch:
			}
		}
		t.Stop()
	}
}

// session runs one stream to lead until it breaks, the leader changes, the lease is lost or
// ctx ends. It reports whether the leader welcomed the worker.
func (w *Worker) session(ctx context.Context, lead election.Leadership) (welcomed bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	creds := w.creds
	if creds == nil {
		// Insecure mode is loopback only: a leader address elsewhere (etcd says so) is not
		// dialed in plaintext.
		if !loopback.Addr(lead.Value) {
			return false, fmt.Errorf("leader %s is not on loopback: insecure mode (--insecure) does not dial it in plaintext; configure --tls-cert, --tls-key and --tls-ca", lead.Value)
		}
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(lead.Value,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(w.tel.TracerProvider), otelgrpc.WithMeterProvider(w.tel.MeterProvider))),
	)
	if err != nil {
		return false, fmt.Errorf("dial leader %s: %w", lead.Value, err)
	}
	defer func() { _ = conn.Close() }()
	stream, err := cairnv1.NewWorkerServiceClient(conn).Connect(sctx)
	if err != nil {
		return false, fmt.Errorf("open stream to leader %s: %w", lead.Value, err)
	}

	s := &session{leader: lead, out: make(chan *cairnv1.WorkerMessage, 4*w.cfg.Concurrency+64), cancel: cancel}
	w.mu.Lock()
	if w.leader != lead || w.reg == nil {
		w.mu.Unlock()
		return false, errLeaderChanged
	}
	s.out <- w.helloLocked()
	if w.draining {
		s.out <- drainingMsg("draining")
	}
	w.sess, w.credits = s, 0
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.sess == s {
			w.sess, w.credits = nil, 0
			w.notifyLocked()
		}
		w.mu.Unlock()
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { cancel(err) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sctx.Done():
				return
			case m := <-s.out:
				if err := stream.Send(m); err != nil {
					cancel(fmt.Errorf("send to leader: %w", err))
					return
				}
			}
		}
	}()

	// The Welcome should come first. Anything before it is applied all the same (an ack, a
	// cancel, a drain); an assignment before it finds no credit and is handed back.
	var welcome *cairnv1.SchedulerWelcome
	for welcome == nil {
		m, err := stream.Recv()
		if err != nil {
			return false, w.streamErr(sctx, err)
		}
		if welcome = m.GetWelcome(); welcome == nil {
			w.log.Warn("leader message before its welcome", slog.String("type", fmt.Sprintf("%T", m.GetMsg())))
			w.handle(s, m)
		}
	}
	if !w.onWelcome(s, welcome) {
		return false, w.streamErr(sctx, context.Canceled)
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.heartbeats(sctx, s) }()
	for {
		m, err := stream.Recv()
		if err != nil {
			return true, w.streamErr(sctx, err)
		}
		w.handle(s, m)
	}
}

// streamErr prefers the reason the worker ended the stream over the error gRPC reports.
func (w *Worker) streamErr(sctx context.Context, err error) error {
	if cause := context.Cause(sctx); cause != nil {
		return cause
	}
	if errors.Is(err, io.EOF) {
		return errors.New("leader closed the stream")
	}
	return err
}

// helloLocked builds the hello: identity, running attempts and every pending result.
func (w *Worker) helloLocked() *cairnv1.WorkerMessage {
	h := &cairnv1.WorkerHello{
		WorkerId: w.cfg.ID, Address: w.addr, Pool: w.cfg.Pool, Labels: w.cfg.Labels,
		Capacity: int32(w.cfg.Concurrency), LeaseId: w.leaseID, Version: Version,
		StartedAt: timestamppb.New(w.started), PendingResults: trimOutputs(w.outbox, maxHelloOutputBytes),
	}
	for _, a := range w.running {
		if a.discard {
			continue
		}
		h.Running = append(h.Running, &cairnv1.RunningAttempt{
			AttemptId: a.asg.GetAttemptId(), RunId: a.asg.GetRunId(), TaskId: a.asg.GetTaskId(),
			Attempt: a.asg.GetAttempt(), FencingToken: a.asg.GetFencingToken(),
		})
	}
	return &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Hello{Hello: h}}
}

// trimOutputs returns results whose outputs add up to at most budget bytes: unchanged when
// they fit, otherwise copies with each output cut to budget/len(results) (the head of an HTTP
// body, the tail of a process's output) and marked truncated. The kept results are not
// modified: a result resent on its own later carries its whole output.
func trimOutputs(results []*cairnv1.AttemptResult, budget int) []*cairnv1.AttemptResult {
	total := 0
	for _, r := range results {
		total += len(r.GetOutput())
	}
	out := slices.Clone(results)
	if total <= budget {
		return out
	}
	share := budget / len(results)
	for i, r := range out {
		if len(r.GetOutput()) <= share {
			continue
		}
		c := proto.CloneOf(r)
		if c.HttpStatus != nil {
			c.Output = c.Output[:share]
		} else {
			c.Output = c.Output[len(c.Output)-share:]
		}
		c.OutputTruncated = true
		out[i] = c
	}
	return out
}

func resultMsg(r *cairnv1.AttemptResult) *cairnv1.WorkerMessage {
	return &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Result{Result: r}}
}

// onWelcome applies the leader's welcome: settings, rejected attempts, then the first credit
// grant. It reports false when s is no longer the current session.
func (w *Worker) onWelcome(s *session, wel *cairnv1.SchedulerWelcome) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess != s {
		return false
	}
	s.welcomed = true
	if hb := wel.GetHeartbeatInterval(); hb != nil && hb.CheckValid() == nil && hb.AsDuration() >= minHeartbeatInterval {
		w.heartbeat = hb.AsDuration()
	}
	w.maxOutput = max(wel.GetMaxOutputBytes(), 0)
	for _, ref := range wel.GetRejected() {
		a := w.running[ref.GetAttemptId()]
		if a == nil || a.asg.GetFencingToken() != ref.GetFencingToken() {
			continue
		}
		a.discard = true
		a.cancel(ErrRejectedByLeader)
		a.log.Warn("leader rejected a running attempt on reconnect; stopping it, no result will be reported")
	}
	w.log.Info("connected to leader", slog.String("leader", s.leader.Value), slog.Int64("epoch", wel.GetEpoch()),
		slog.String("scheduler", wel.GetSchedulerId()), slog.Int("adopted", len(wel.GetAdopted())),
		slog.Int("rejected", len(wel.GetRejected())), slog.Int("pending_results", len(w.outbox)))
	w.welcomedAny = true
	w.grantLocked()
	w.notifyLocked()
	return true
}

// heartbeats sends a heartbeat with the running attempts every heartbeat interval.
func (w *Worker) heartbeats(ctx context.Context, s *session) {
	w.mu.Lock()
	every := w.heartbeat
	w.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		hb := &cairnv1.WorkerHeartbeat{SentAt: timestamppb.Now()}
		for _, a := range w.running {
			if !a.discard {
				hb.Running = append(hb.Running, a.ref())
			}
		}
		if w.sess == s {
			s.send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Heartbeat{Heartbeat: hb}})
		}
		w.mu.Unlock()
	}
}

// handle applies one message of the leader.
func (w *Worker) handle(s *session, m *cairnv1.SchedulerMessage) {
	switch msg := m.GetMsg().(type) {
	case *cairnv1.SchedulerMessage_Assignment:
		w.assign(s, msg.Assignment)
	case *cairnv1.SchedulerMessage_ResultAck:
		w.ack(msg.ResultAck)
	case *cairnv1.SchedulerMessage_Cancel:
		w.cancelAttempt(msg.Cancel)
	case *cairnv1.SchedulerMessage_Drain:
		w.log.Info("leader asks this worker to drain", slog.String("reason", msg.Drain.GetReason()))
		w.requestDrain(msg.Drain.GetReason())
	case *cairnv1.SchedulerMessage_SecretsResponse:
		w.secretsResponse(msg.SecretsResponse)
	case *cairnv1.SchedulerMessage_Welcome:
		w.log.Warn("ignoring a second welcome on the same stream")
	default:
		w.log.Warn("ignoring an unknown message from the leader", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}
