package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// DefaultPrefix is the etcd key prefix of every Cairn key.
	DefaultPrefix = "/cairn/"
	// DefaultTTL is the lease TTL of a registration when Register is given 0.
	DefaultTTL = 10 * time.Second
	// MaxTTL bounds the TTL: a dead worker keeps its attempts for that long.
	MaxTTL = 5 * time.Minute
	// workersPath is the folder of worker keys below the prefix.
	workersPath = "workers/"
)

var (
	// ErrInvalid is matched by every validation error of this package.
	ErrInvalid = errors.New("membership: invalid input")
	// ErrAlreadyRegistered is returned by Register when the worker ID's key still exists
	// (another live worker uses the ID, or a previous incarnation's lease has not expired).
	ErrAlreadyRegistered = errors.New("membership: worker id already registered")
	// ErrLost is returned by Update after the registration was lost.
	ErrLost = errors.New("membership: registration lost")
	// ErrClosed is returned by Update after Close.
	ErrClosed = errors.New("membership: registration closed")
)

// idPattern keeps IDs usable as one etcd key segment, a label value and a file name.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Info describes one worker. It is stored as JSON under <prefix>workers/<ID>.
type Info struct {
	ID       string            `json:"id"`
	Address  string            `json:"address"`
	Pool     string            `json:"pool,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Capacity int               `json:"capacity"`
	Version  string            `json:"version,omitempty"`
	Started  time.Time         `json:"started"`
}

// Validate reports every problem of i, each naming its field.
func (i Info) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	if !idPattern.MatchString(i.ID) {
		bad("id %q must match %s", i.ID, idPattern)
	}
	if strings.TrimSpace(i.Address) == "" {
		bad("address of worker %q is empty", i.ID)
	}
	if i.Capacity < 1 {
		bad("capacity of worker %q is %d, must be at least 1", i.ID, i.Capacity)
	}
	for k := range i.Labels {
		if k == "" {
			bad("worker %q has a label with an empty name", i.ID)
		}
	}
	if i.Started.IsZero() {
		bad("started time of worker %q is not set", i.ID)
	}
	return errors.Join(errs...)
}

// Option adjusts Register and NewWatcher.
type Option func(*options)

type options struct {
	prefix string
	log    *slog.Logger
	events chan<- Event
}

// WithPrefix sets the etcd key prefix (must end with "/"; default DefaultPrefix).
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithEvents makes a Watcher send every change to ch (see Watcher). The watcher blocks while
// ch is full and never closes it. Register ignores this option.
func WithEvents(ch chan<- Event) Option { return func(o *options) { o.events = ch } }

func buildOptions(opts []Option) (options, error) {
	o := options{prefix: DefaultPrefix, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.prefix == "" {
		o.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.prefix, "/") {
		return o, fmt.Errorf("%w: key prefix %q must end with \"/\"", ErrInvalid, o.prefix)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	return o, nil
}

// WorkersPrefix returns the folder of worker keys under key prefix p.
func WorkersPrefix(p string) string { return p + workersPath }

// Registration is a worker's live key in etcd.
type Registration struct {
	client *clientv3.Client
	key    string
	lease  clientv3.LeaseID
	ttl    time.Duration
	log    *slog.Logger

	stop context.CancelFunc // stops the keepalive and the key watch
	wg   sync.WaitGroup

	lost     chan struct{}
	lostOnce sync.Once

	mu     sync.Mutex
	info   Info
	closed bool
	cause  error // why the registration was lost
	rev    int64 // mod revision of our last write

	closeOnce sync.Once
	closeErr  error
}

// Register puts info under <prefix>workers/<info.ID> with a lease of ttl (0 means DefaultTTL;
// rounded up to whole seconds) and keeps the lease alive until Close or until it is lost.
func Register(ctx context.Context, client *clientv3.Client, info Info, ttl time.Duration, opts ...Option) (*Registration, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: etcd client is nil", ErrInvalid)
	}
	if err := info.Validate(); err != nil {
		return nil, err
	}
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < time.Second || ttl > MaxTTL:
		return nil, fmt.Errorf("%w: ttl %v must be between 1s and %v", ErrInvalid, ttl, MaxTTL)
	}
	seconds := int64(math.Ceil(ttl.Seconds()))
	value, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode worker %s: %w", info.ID, err)
	}
	key := WorkersPrefix(o.prefix) + info.ID

	grant, err := client.Grant(ctx, seconds)
	if err != nil {
		return nil, fmt.Errorf("register worker %s: grant lease: %w", info.ID, err)
	}
	r := &Registration{
		client: client, key: key, lease: grant.ID, ttl: time.Duration(seconds) * time.Second,
		log:  o.log.With(slog.String("component", "membership"), slog.String("worker", info.ID)),
		lost: make(chan struct{}), info: info,
	}
	// The keepalive outlives Register's ctx: it belongs to the registration until Close.
	kaCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	ka, err := client.KeepAlive(kaCtx, grant.ID)
	if err != nil {
		stop()
		r.revoke()
		return nil, fmt.Errorf("register worker %s: keep lease alive: %w", info.ID, err)
	}
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(grant.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err == nil && !resp.Succeeded {
		holder := ""
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			holder = fmt.Sprintf(" (held under lease %x since revision %d)", kvs[0].Lease, kvs[0].CreateRevision)
		}
		err = fmt.Errorf("%w: %s%s", ErrAlreadyRegistered, key, holder)
	}
	if err != nil {
		stop()
		r.revoke()
		return nil, fmt.Errorf("register worker %s: %w", info.ID, err)
	}
	r.rev = resp.Header.Revision
	r.wg.Add(2)
	go r.drainKeepAlive(kaCtx, ka)
	go r.watchKey(kaCtx, resp.Header.Revision)
	return r, nil
}

// Key returns the registration's etcd key.
func (r *Registration) Key() string { return r.key }

// Info returns the worker information last written.
func (r *Registration) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// Lost returns a channel closed when the registration is lost (the lease expired or was
// revoked, etcd was unreachable for a TTL, or the key was deleted or taken over). It is not
// closed by Close.
func (r *Registration) Lost() <-chan struct{} { return r.lost }

// Err returns why the registration was lost, or nil.
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

func (r *Registration) markLost(cause error) {
	r.mu.Lock()
	if r.closed || r.cause != nil {
		r.mu.Unlock()
		return
	}
	r.cause = cause
	r.mu.Unlock()
	r.log.Warn("worker registration lost", slog.Any("cause", cause))
	r.lostOnce.Do(func() { close(r.lost) })
}

func (r *Registration) drainKeepAlive(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer r.wg.Done()
	for range ka {
	}
	if ctx.Err() == nil {
		r.markLost(fmt.Errorf("%w: lease %x keepalive ended (expired, revoked or etcd unreachable)", ErrLost, r.lease))
	}
}

// watchKey reports the key's deletion (or its takeover by another lease) the moment etcd
// applies it, ahead of the next keepalive round trip.
func (r *Registration) watchKey(ctx context.Context, fromRev int64) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		wch := r.client.Watch(ctx, r.key, clientv3.WithRev(fromRev+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				fromRev = ev.Kv.ModRevision
				switch {
				case ev.Type == mvccpb.DELETE:
					r.markLost(fmt.Errorf("%w: key %s deleted at revision %d", ErrLost, r.key, ev.Kv.ModRevision))
					return
				case clientv3.LeaseID(ev.Kv.Lease) != r.lease:
					r.markLost(fmt.Errorf("%w: key %s taken over by lease %x", ErrLost, r.key, ev.Kv.Lease))
					return
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		// The watch broke (compaction, cancelled by the server): check the key directly,
		// then watch again from the revision read.
		resp, err := r.client.Get(ctx, r.key)
		if err != nil {
			continue // the keepalive decides whether we are lost
		}
		if len(resp.Kvs) == 0 || clientv3.LeaseID(resp.Kvs[0].Lease) != r.lease {
			r.markLost(fmt.Errorf("%w: key %s gone or taken over", ErrLost, r.key))
			return
		}
		fromRev = resp.Header.Revision
	}
}

// Update rewrites the worker's information (capacity, labels…) under the same lease. The ID
// cannot change.
func (r *Registration) Update(ctx context.Context, info Info) error {
	if err := info.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.cause != nil:
		return r.cause
	case info.ID != r.info.ID:
		return fmt.Errorf("%w: update cannot change the worker id from %q to %q", ErrInvalid, r.info.ID, info.ID)
	}
	value, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode worker %s: %w", info.ID, err)
	}
	resp, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", r.lease)).
		Then(clientv3.OpPut(r.key, string(value), clientv3.WithLease(r.lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("update worker %s: %w", info.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("update worker %s: %w: key no longer held by lease %x", info.ID, ErrLost, r.lease)
	}
	r.info, r.rev = info, resp.Header.Revision
	return nil
}

// Close revokes the lease, deleting the key at once (a clean exit), and stops the keepalive.
// It is idempotent; Lost does not fire because of it.
func (r *Registration) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.stop()
		r.wg.Wait()
		r.closeErr = r.revoke()
	})
	return r.closeErr
}

// revoke revokes the lease within one TTL; an already expired lease is not an error.
func (r *Registration) revoke() error {
	ctx, cancel := context.WithTimeout(context.Background(), max(r.ttl, time.Second))
	defer cancel()
	_, err := r.client.Revoke(ctx, r.lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("revoke lease %x of %s: %w", r.lease, r.key, err)
	}
	return nil
}
