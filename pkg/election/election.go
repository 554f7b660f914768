package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairn-io/cairn/pkg/lifecycle"
	"github.com/cairn-io/cairn/pkg/retry"
)

const (
	// DefaultPrefix is the etcd key prefix of every Cairn key.
	DefaultPrefix = "/cairn/"
	// DefaultSessionTTL is the lease TTL of a candidate's session: how long a leader that
	// vanished (crash, partition) keeps its office before a follower takes over.
	DefaultSessionTTL = 5 * time.Second
	// leaderPath is the election prefix below the key prefix.
	leaderPath = "scheduler/leader"
)

var (
	// ErrNoLeader is returned by Leader when nobody leads.
	ErrNoLeader = errors.New("election: no leader")
	// ErrInvalidConfig is matched by every configuration error of this package.
	ErrInvalidConfig = errors.New("election: invalid configuration")
	// ErrResigned is the leader context's cause after Resign.
	ErrResigned = errors.New("election: leadership resigned")
	// ErrSessionLost is the leader context's cause when the session's keepalive ended.
	ErrSessionLost = errors.New("election: etcd session lost")
	// ErrLeadershipLost is the leader context's cause when the leader key was deleted or can
	// no longer be watched (lease revoked or expired, key removed by an operator).
	ErrLeadershipLost = errors.New("election: leader key lost")
	// ErrLeaderReturned is the leader context's cause when OnElected returned on its own.
	ErrLeaderReturned = errors.New("election: OnElected returned")
)

// Leadership is one leader's term.
type Leadership struct {
	// Epoch is the leader key's create revision: unique per term and strictly increasing
	// from one leader to the next. It fits in 63 bits; etcd revisions in practice are far
	// smaller.
	Epoch int64
	// Key is the leader's election key.
	Key string
	// Value is the leader's gRPC address.
	Value string
}

// IsZero reports whether l is "no leader".
func (l Leadership) IsZero() bool { return l == Leadership{} }

// Config configures an Elector.
type Config struct {
	// Client is the etcd client (required).
	Client *clientv3.Client
	// Prefix is the etcd key prefix; it must end with "/". Empty means DefaultPrefix.
	Prefix string
	// Value is this candidate's gRPC address, published while it leads (required).
	Value string
	// SessionTTL is the session lease TTL, rounded up to whole seconds; zero means
	// DefaultSessionTTL. etcd raises TTLs below its minimum (about 2s by default).
	SessionTTL time.Duration
	// OnElected runs while this candidate leads (required). ctx is cancelled the moment
	// leadership is lost or given up (see the package doc); OnElected must then return
	// promptly: the hand-over waits for it. If it returns on its own, the elector resigns and
	// campaigns again (after a backoff if it returned an error).
	OnElected func(ctx context.Context, l Leadership) error
	// Logger receives leadership changes and campaign errors; nil means slog.Default().
	Logger *slog.Logger
}

// Elector campaigns for leadership until stopped. It implements lifecycle.Service.
type Elector struct {
	lifecycle.StartStop

	client  *clientv3.Client
	prefix  string // <prefix>scheduler/leader
	value   string
	ttl     int // seconds
	onElect func(context.Context, Leadership) error
	log     *slog.Logger
	backoff retry.Policy

	mu   sync.Mutex
	term *term // non-nil while this candidate leads
}

// term is one period of office of this elector.
type term struct {
	lead   Leadership
	ctx    context.Context // the leader context given to OnElected
	cancel context.CancelCauseFunc
	ended  chan struct{} // closed once OnElected returned and the key was given up
}

var _ lifecycle.Service = (*Elector)(nil)

// KeyPrefix validates a key prefix: empty means DefaultPrefix; otherwise it must end with "/".
func KeyPrefix(p string) (string, error) {
	if p == "" {
		return DefaultPrefix, nil
	}
	if !strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("%w: key prefix %q must end with \"/\"", ErrInvalidConfig, p)
	}
	return p, nil
}

// ElectionPrefix returns the election prefix under key prefix p (which must be valid).
func ElectionPrefix(p string) string { return p + leaderPath }

// New checks cfg and returns an Elector; Start begins campaigning.
func New(cfg Config) (*Elector, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, fmt.Errorf("%w: Client is nil", ErrInvalidConfig))
	}
	prefix, err := KeyPrefix(cfg.Prefix)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Value == "" {
		errs = append(errs, fmt.Errorf("%w: Value (the candidate's gRPC address) is empty", ErrInvalidConfig))
	}
	if cfg.OnElected == nil {
		errs = append(errs, fmt.Errorf("%w: OnElected is nil", ErrInvalidConfig))
	}
	ttl := cfg.SessionTTL
	switch {
	case ttl == 0:
		ttl = DefaultSessionTTL
	case ttl < 0:
		errs = append(errs, fmt.Errorf("%w: SessionTTL %v is negative", ErrInvalidConfig, cfg.SessionTTL))
	case ttl > time.Hour:
		errs = append(errs, fmt.Errorf("%w: SessionTTL %v is over 1h: a dead leader would hold office that long", ErrInvalidConfig, cfg.SessionTTL))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Elector{
		client:  cfg.Client,
		prefix:  ElectionPrefix(prefix),
		value:   cfg.Value,
		ttl:     int(math.Ceil(ttl.Seconds())),
		onElect: cfg.OnElected,
		log:     log.With(slog.String("component", "election"), slog.String("candidate", cfg.Value)),
		backoff: retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: true},
	}, nil
}

// Start begins campaigning in the background. It does not wait to be elected.
func (e *Elector) Start(ctx context.Context) error {
	return e.StartFunc(ctx, func(context.Context) (lifecycle.RunFunc, error) {
		return e.run, nil
	})
}

// Leadership returns this candidate's current term and true while it leads: from just before
// OnElected is called until its context is cancelled.
func (e *Elector) Leadership() (Leadership, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil || e.term.ctx.Err() != nil {
		return Leadership{}, false
	}
	return e.term.lead, true
}

// Resign gives up leadership if this candidate leads: it cancels the leader context, waits for
// OnElected to return and deletes the leader key, so the next candidate in line wins at once.
// The elector then campaigns again (at the back of the line). It returns nil if this candidate
// does not lead, and ctx's error if ctx ends before the hand-over completed.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	t := e.term
	e.mu.Unlock()
	if t == nil {
		return nil
	}
	t.cancel(ErrResigned)
	select {
	case <-t.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("resign: %w", ctx.Err())
	}
}

// Leader returns the current leader of the election this elector campaigns in.
func (e *Elector) Leader(ctx context.Context) (Leadership, error) {
	return leader(ctx, e.client, e.prefix)
}

// Observe follows the leader of the election this elector campaigns in (see Observe).
func (e *Elector) Observe(ctx context.Context) <-chan Leadership {
	return observe(ctx, e.client, e.prefix)
}

// run is the campaign loop: one session per iteration, until ctx ends.
func (e *Elector) run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		err := e.campaignOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			continue
		}
		delay := e.backoff.Delay(failures, nil)
		failures++
		e.log.Warn("campaign round failed; retrying", slog.Any("error", err), slog.Duration("backoff", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// campaignOnce runs one session: campaign, lead if elected, give the key and lease up.
func (e *Elector) campaignOnce(ctx context.Context) error {
	// The lease is granted with ctx so Stop interrupts a grant that hangs on an unreachable
	// cluster; the session itself lives on a context Stop does not cancel, so its lease stays
	// alive until this function has resigned and revokes it.
	grant, err := e.client.Grant(ctx, int64(e.ttl))
	if err != nil {
		return fmt.Errorf("grant session lease: %w", err)
	}
	sess, err := concurrency.NewSession(e.client, concurrency.WithLease(grant.ID),
		concurrency.WithTTL(e.ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		e.revoke(ctx, grant.ID)
		return fmt.Errorf("start session: %w", err)
	}
	defer e.closeSession(sess)

	campCtx, cancelCamp := context.WithCancel(ctx)
	defer cancelCamp()
	defer context.AfterFunc(sess.Ctx(), cancelCamp)()

	el := concurrency.NewElection(sess, e.prefix)
	if err := el.Campaign(campCtx, e.value); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if sess.Ctx().Err() != nil {
			return fmt.Errorf("campaign: %w", ErrSessionLost)
		}
		return fmt.Errorf("campaign: %w", err)
	}
	// Campaign can return after the session expired while it waited (it only waits for the
	// keys before ours to go): check that our key is still there, with our revision and lease.
	resp, err := e.client.Get(campCtx, el.Key())
	if err != nil {
		e.resign(ctx, el)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("confirm leader key %s: %w", el.Key(), err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != el.Rev() || clientv3.LeaseID(resp.Kvs[0].Lease) != sess.Lease() {
		return fmt.Errorf("confirm leader key %s: %w before taking office", el.Key(), ErrLeadershipLost)
	}
	return e.lead(ctx, sess, el, resp.Header.Revision)
}

// lead holds office: it runs OnElected with a context cancelled as soon as leadership is lost,
// and after OnElected returned it resigns.
func (e *Elector) lead(ctx context.Context, sess *concurrency.Session, el *concurrency.Election, seenRev int64) error {
	l := Leadership{Epoch: el.Rev(), Key: el.Key(), Value: e.value}
	leaderCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(ErrLeaderReturned)
	stopSessionWatch := context.AfterFunc(sess.Ctx(), func() { cancel(ErrSessionLost) })
	defer stopSessionWatch()

	// Watch our own key: a revoked or expired lease deletes it, and the watch reports that
	// as soon as etcd does, without waiting for the next keepalive round trip.
	watchCtx, stopWatch := context.WithCancel(leaderCtx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		wch := e.client.Watch(watchCtx, l.Key, clientv3.WithRev(seenRev+1))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				cancel(fmt.Errorf("%w: watch: %v", ErrLeadershipLost, err))
				return
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					cancel(fmt.Errorf("%w: key deleted at revision %d", ErrLeadershipLost, ev.Kv.ModRevision))
					return
				}
			}
		}
		if watchCtx.Err() == nil {
			cancel(fmt.Errorf("%w: watch closed", ErrLeadershipLost))
		}
	}()

	t := &term{lead: l, ctx: leaderCtx, cancel: cancel, ended: make(chan struct{})}
	e.mu.Lock()
	e.term = t
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.term = nil
		e.mu.Unlock()
		close(t.ended)
	}()

	e.log.Info("elected leader", slog.Int64("epoch", l.Epoch), slog.String("key", l.Key))
	runErr := e.onElect(leaderCtx, l)
	cancel(ErrLeaderReturned)
	cause := context.Cause(leaderCtx)
	stopWatch()
	<-watchDone

	// Only now, with OnElected returned, give the key up so the next candidate can win.
	// campaignOnce then revokes the session lease. A lost session has no key left to give up
	// (or no cluster to reach): skip the round trip that would only wait for a timeout.
	if sess.Ctx().Err() == nil {
		e.resign(ctx, el)
	}
	e.log.Info("leadership ended", slog.Int64("epoch", l.Epoch), slog.Any("cause", cause), slog.Any("error", runErr))
	if errors.Is(cause, ErrLeaderReturned) && runErr != nil {
		return fmt.Errorf("leader epoch %d: %w", l.Epoch, runErr)
	}
	return nil
}

// resign deletes our leader key (if it is still ours) within a TTL, even after ctx ended.
func (e *Elector) resign(ctx context.Context, el *concurrency.Election) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(e.ttl)*time.Second)
	defer cancel()
	if err := el.Resign(rctx); err != nil {
		e.log.Debug("resign failed; the lease revocation or expiry removes the key", slog.Any("error", err))
	}
}

// closeSession stops the keepalive and revokes the lease. A session whose keepalive already
// ended is only orphaned: its lease expired, was revoked, or cannot be reached to revoke.
func (e *Elector) closeSession(sess *concurrency.Session) {
	if sess.Ctx().Err() != nil {
		sess.Orphan()
		return
	}
	if err := sess.Close(); err != nil {
		e.log.Debug("revoke session lease", slog.Any("error", err))
	}
}

func (e *Elector) revoke(ctx context.Context, id clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(e.ttl)*time.Second)
	defer cancel()
	_, _ = e.client.Revoke(rctx, id)
}

// Leader returns the current leader of the election under key prefix (empty means
// DefaultPrefix), or ErrNoLeader.
func Leader(ctx context.Context, client *clientv3.Client, prefix string) (Leadership, error) {
	p, err := KeyPrefix(prefix)
	if err != nil {
		return Leadership{}, err
	}
	return leader(ctx, client, ElectionPrefix(p))
}

func leader(ctx context.Context, client *clientv3.Client, electionPrefix string) (Leadership, error) {
	resp, err := client.Get(ctx, electionPrefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return Leadership{}, fmt.Errorf("read leader: %w", err)
	}
	l := fromKVs(resp.Kvs)
	if l.IsZero() {
		return Leadership{}, ErrNoLeader
	}
	return l, nil
}

func fromKVs(kvs []*mvccpb.KeyValue) Leadership {
	if len(kvs) == 0 {
		return Leadership{}
	}
	return Leadership{Epoch: kvs[0].CreateRevision, Key: string(kvs[0].Key), Value: string(kvs[0].Value)}
}

// Observe follows the leader of the election under key prefix (empty means DefaultPrefix).
// The channel first receives the current leader, then every change: a new leader, a new
// address of the same leader, or the zero Leadership while nobody leads. Consecutive values
// differ. Watch failures (compaction, a lost connection) are survived by reading the state
// again; the channel is closed only when ctx ends.
func Observe(ctx context.Context, client *clientv3.Client, prefix string) (<-chan Leadership, error) {
	p, err := KeyPrefix(prefix)
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: client is nil", ErrInvalidConfig)
	}
	return observe(ctx, client, ElectionPrefix(p)), nil
}

func observe(ctx context.Context, client *clientv3.Client, electionPrefix string) <-chan Leadership {
	ch := make(chan Leadership)
	go func() {
		defer close(ch)
		o := observer{client: client, prefix: electionPrefix + "/", ch: ch,
			backoff: retry.Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: true}}
		o.run(ctx)
	}()
	return ch
}

type observer struct {
	client  *clientv3.Client
	prefix  string
	ch      chan<- Leadership
	backoff retry.Policy
	last    Leadership
	sent    bool
}

func (o *observer) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		if o.listAndWatch(ctx) {
			failures = 0
		} else {
			failures++
		}
		t := time.NewTimer(o.backoff.Delay(failures, nil))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listAndWatch reads the leader, then re-reads it on every change under the prefix until the
// watch breaks. It reports whether it got as far as watching.
func (o *observer) listAndWatch(ctx context.Context) bool {
	resp, err := o.client.Get(ctx, o.prefix, clientv3.WithFirstCreate()...)
	if err != nil || !o.emit(ctx, fromKVs(resp.Kvs)) {
		return false
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := o.client.Watch(wctx, o.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if wr.Err() != nil {
			return true
		}
		if len(wr.Events) == 0 {
			continue
		}
		// The first-created key decides; a re-read is simpler and no less exact than
		// replaying the events (it reflects at least this watch response's revision).
		resp, err := o.client.Get(ctx, o.prefix, clientv3.WithFirstCreate()...)
		if err != nil || !o.emit(ctx, fromKVs(resp.Kvs)) {
			return true
		}
	}
	return true
}

// emit sends l if it differs from the last value sent; false if ctx ended first.
func (o *observer) emit(ctx context.Context, l Leadership) bool {
	if o.sent && l == o.last {
		return true
	}
	select {
	case o.ch <- l:
		o.last, o.sent = l, true
		return true
	case <-ctx.Done():
		return false
	}
}
