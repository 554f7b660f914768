package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/lifecycle"
	"github.com/cairn-io/cairn/pkg/loopback"
)

const (
	// DefaultTimeout bounds one forwarded call, retries included.
	DefaultTimeout = 10 * time.Second
	// RetryAfter is the retry hint given to clients when no leader can take a mutation.
	RetryAfter = time.Second
)

// ErrInvalidConfig is matched by every configuration error of New.
var ErrInvalidConfig = errors.New("forward: invalid configuration")

// Config configures a Forwarder.
type Config struct {
	// Client is the etcd client the election is read with (required).
	Client *clientv3.Client
	// Prefix is the etcd key prefix; empty means election.DefaultPrefix.
	Prefix string
	// Timeout bounds each call, retries on UNAVAILABLE included; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxMessageBytes caps gRPC messages to and from the leader; zero leaves gRPC's default.
	MaxMessageBytes int
	// Credentials secure the leader connections (mutual TLS: the gateway's client
	// certificate, the leader's verified against a fixed name, whatever address etcd gives);
	// nil dials in plaintext, and then only a leader address on loopback (insecure mode).
	Credentials credentials.TransportCredentials
	// DialOptions are added to the leader connections (tests, instrumentation).
	DialOptions []grpc.DialOption
	// Logger receives leader changes; nil means slog.Default().
	Logger *slog.Logger
}

// Forwarder forwards calls to the current leader. It implements lifecycle.Service.
type Forwarder struct {
	lifecycle.StartStop

	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	leader  election.Leadership
	conn    *grpc.ClientConn // to leader.Value; nil when there is no leader
	dialErr error            // why conn could not be created, if it could not
	changed chan struct{}    // closed and replaced at every leader change
	synced  chan struct{}    // closed once the first election state has been read
	isSync  bool
}

var _ lifecycle.Service = (*Forwarder)(nil)

// New checks cfg and returns a Forwarder; Start begins following the election.
func New(cfg Config) (*Forwarder, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, fmt.Errorf("%w: etcd Client is nil", ErrInvalidConfig))
	}
	prefix, err := election.KeyPrefix(cfg.Prefix)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: Timeout %v is negative", ErrInvalidConfig, cfg.Timeout))
	}
	if cfg.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxMessageBytes %d is negative", ErrInvalidConfig, cfg.MaxMessageBytes))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Prefix = prefix
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Forwarder{
		cfg:     cfg,
		log:     log.With(slog.String("component", "forward")),
		changed: make(chan struct{}),
		synced:  make(chan struct{}),
	}, nil
}

// Start begins observing the election in the background.
func (f *Forwarder) Start(ctx context.Context) error {
	return f.StartFunc(ctx, func(ctx context.Context) (lifecycle.RunFunc, error) {
		ch, err := election.Observe(ctx, f.cfg.Client, f.cfg.Prefix)
		if err != nil {
			return nil, fmt.Errorf("forward: observe the election: %w", err)
		}
		return func(ctx context.Context) error {
			defer f.set(election.Leadership{}) // close the connection; callers see no leader
			for l := range ch {
				f.set(l)
			}
			return nil
		}, nil
	})
}

// Synced returns a channel closed once the election has been read for the first time.
func (f *Forwarder) Synced() <-chan struct{} { return f.synced }

// set installs l as the current leader, replacing the connection if the address changed.
func (f *Forwarder) set(l election.Leadership) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.isSync {
		f.isSync = true
		close(f.synced)
	}
	if l == f.leader {
		return
	}
	old := f.conn
	if l.Value != f.leader.Value {
		f.conn, f.dialErr = nil, nil
		if !l.IsZero() {
			f.conn, f.dialErr = f.dial(l.Value)
			if old != nil {
				// Calls in flight on the old connection fail with CANCELED/UNAVAILABLE; the
				// old leader is gone or deposed anyway.
				go func() { _ = old.Close() }()
			}
		} else if old != nil {
			go func() { _ = old.Close() }()
		}
	}
	if l.IsZero() {
		f.log.Warn("no scheduler leader")
	} else {
		f.log.Info("scheduler leader", slog.String("address", l.Value), slog.Int64("epoch", l.Epoch))
	}
	f.leader = l
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *Forwarder) dial(addr string) (*grpc.ClientConn, error) {
	creds := f.cfg.Credentials
	if creds == nil {
		// Plaintext is for a cluster entirely on loopback: a leader address elsewhere (etcd
		// says so) is not dialed without TLS.
		if !loopback.Addr(addr) {
			f.log.Error("refusing to dial the leader in plaintext: it is not on loopback", slog.String("address", addr))
			return nil, fmt.Errorf("leader %s is not on loopback and the gateway has no TLS client certificate (--tls-cert, --tls-key, --tls-ca)", addr)
		}
		creds = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if n := f.cfg.MaxMessageBytes; n > 0 {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(n), grpc.MaxCallSendMsgSize(n)))
	}
	opts = append(opts, f.cfg.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		f.log.Error("cannot dial the leader", slog.String("address", addr), slog.Any("error", err))
		return nil, fmt.Errorf("dial leader %s: %w", addr, err)
	}
	return conn, nil
}

// Leader returns the current leader (zero when none is known).
func (f *Forwarder) Leader() election.Leadership {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// snapshot is the forwarder's state at one moment.
type snapshot struct {
	leader  election.Leadership
	conn    *grpc.ClientConn
	dialErr error
	changed <-chan struct{}
}

func (f *Forwarder) current() snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return snapshot{f.leader, f.conn, f.dialErr, f.changed}
}

// CheckLeader reports whether a leader is known and its connection becomes ready before ctx
// ends: the gateway's readiness check.
func (f *Forwarder) CheckLeader(ctx context.Context) error {
	cur := f.current()
	l, conn, dialErr := cur.leader, cur.conn, cur.dialErr
	switch {
	case l.IsZero():
		return errors.New("no scheduler leader is elected")
	case conn == nil:
		return fmt.Errorf("leader %s: %w", l.Value, dialErr)
	}
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("leader %s not reachable (connection %s)", l.Value, s)
		}
	}
}

// Unavailable returns an UNAVAILABLE status with msg and a RetryInfo detail of RetryAfter.
func Unavailable(msg string) error {
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// errTimeout is the cause of a call's context when the forward timeout ends it.
var errTimeout = errors.New("forward timeout")

// Do calls fn with a client of the current leader under the forward timeout, retrying on
// UNAVAILABLE as the package documentation describes. Its error is a gRPC status.
func (f *Forwarder) Do(ctx context.Context, method string, fn func(ctx context.Context, c cairnv1.SchedulerServiceClient) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, f.cfg.Timeout, errTimeout)
	defer cancel()
	delay := 25 * time.Millisecond
	var last error // the last UNAVAILABLE from a leader
	for {
		cur := f.current()
		l, conn, dialErr, changed := cur.leader, cur.conn, cur.dialErr, cur.changed
		switch {
		case l.IsZero() && last == nil:
			return Unavailable(fmt.Sprintf("%s: no scheduler leader is elected; retry shortly", method))
		case l.IsZero():
			// Mid-failover: the leader that answered UNAVAILABLE is gone; wait for the next.
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				if context.Cause(ctx) != errTimeout {
					return status.FromContextError(ctx.Err()).Err()
				}
				return Unavailable(fmt.Sprintf("%s: no scheduler leader was elected within %v (last answer: %s); retry shortly",
					method, f.cfg.Timeout, status.Convert(last).Message()))
			}
		case conn == nil:
			return Unavailable(fmt.Sprintf("%s: %v", method, dialErr))
		}
		err := fn(ctx, cairnv1.NewSchedulerServiceClient(conn))
		if err == nil {
			return nil
		}
		st := status.Convert(err)
		if ctx.Err() != nil {
			if context.Cause(ctx) != errTimeout {
				return err // the caller gave up
			}
			if last != nil || st.Code() == codes.Unavailable {
				return Unavailable(fmt.Sprintf("%s: no scheduler leader answered within %v: %s", method, f.cfg.Timeout, st.Message()))
			}
			return status.Errorf(codes.DeadlineExceeded, "%s: the scheduler leader at %s did not answer within %v", method, l.Value, f.cfg.Timeout)
		}
		if st.Code() != codes.Unavailable {
			return err
		}
		last = err
		f.log.Debug("leader unavailable; retrying", slog.String("method", method), slog.String("leader", l.Value), slog.String("error", st.Message()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if context.Cause(ctx) != errTimeout {
				return status.FromContextError(ctx.Err()).Err()
			}
			return Unavailable(fmt.Sprintf("%s: no scheduler leader answered within %v: %s", method, f.cfg.Timeout, st.Message()))
		case <-changed:
			t.Stop()
		case <-t.C:
		}
		delay = min(delay*2, 400*time.Millisecond)
	}
}
