package lock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const (
	// DefaultPrefix is the etcd key prefix of every Cairn key.
	DefaultPrefix = "/cairn/"
	// DefaultTTL is the session lease TTL of a holder: how long a vanished holder keeps the
	// lock before the next contender gets it.
	DefaultTTL = 10 * time.Second
	locksPath  = "locks/"
)

var (
	// ErrInvalid is matched by every validation error of this package.
	ErrInvalid = errors.New("lock: invalid input")
	// ErrLost is the cause of a lock's context when its session was lost or its key deleted
	// while held; With returns it when that happened during the critical section.
	ErrLost = errors.New("lock: lost while held")
	// ErrReleased is the cause of a lock's context after Release.
	ErrReleased = errors.New("lock: released")
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Option adjusts Acquire and With.
type Option func(*options)

type options struct {
	prefix string
	ttl    time.Duration
}

// WithPrefix sets the etcd key prefix (must end with "/"; default DefaultPrefix).
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithTTL sets the session lease TTL (at least 1s, rounded up to whole seconds; default
// DefaultTTL).
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// Lock is a held lock.
type Lock struct {
	name  string
	key   string
	token int64
	sess  *concurrency.Session
	mutex *concurrency.Mutex

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	releaseOnce sync.Once
	releaseErr  error
}

// Acquire blocks until it holds the lock called name, ctx ends (the error wraps ctx's), or
// the session is lost while waiting.
func Acquire(ctx context.Context, client *clientv3.Client, name string, opts ...Option) (*Lock, error) {
	o := options{prefix: DefaultPrefix, ttl: DefaultTTL}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if client == nil {
		errs = append(errs, fmt.Errorf("%w: etcd client is nil", ErrInvalid))
	}
	if !namePattern.MatchString(name) {
		errs = append(errs, fmt.Errorf("%w: lock name %q must match %s", ErrInvalid, name, namePattern))
	}
	if o.prefix == "" {
		o.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.prefix, "/") {
		errs = append(errs, fmt.Errorf("%w: key prefix %q must end with \"/\"", ErrInvalid, o.prefix))
	}
	if o.ttl < time.Second || o.ttl > time.Hour {
		errs = append(errs, fmt.Errorf("%w: ttl %v must be between 1s and 1h", ErrInvalid, o.ttl))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ttl := int(math.Ceil(o.ttl.Seconds()))

	grant, err := client.Grant(ctx, int64(ttl))
	if err != nil {
		return nil, fmt.Errorf("lock %s: grant lease: %w", name, err)
	}
	// The session outlives Acquire's ctx: it belongs to the lock until Release.
	sess, err := concurrency.NewSession(client, concurrency.WithLease(grant.ID), concurrency.WithTTL(ttl),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(ttl)*time.Second)
		_, _ = client.Revoke(rctx, grant.ID)
		cancel()
		return nil, fmt.Errorf("lock %s: start session: %w", name, err)
	}
	waitCtx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	defer context.AfterFunc(sess.Ctx(), stopWait)()

	m := concurrency.NewMutex(sess, o.prefix+locksPath+name)
	if err := m.Lock(waitCtx); err != nil {
		_ = sess.Close()
		if ctx.Err() == nil && sess.Ctx().Err() != nil {
			err = ErrLost
		}
		return nil, fmt.Errorf("lock %s: acquire: %w", name, err)
	}
	// Read our key back: its create revision is the token, and it proves we still hold it.
	resp, err := client.Get(waitCtx, m.Key())
	if err == nil && (len(resp.Kvs) == 0 || clientv3.LeaseID(resp.Kvs[0].Lease) != sess.Lease()) {
		err = ErrLost
	}
	if err != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("lock %s: confirm %s: %w", name, m.Key(), err)
	}
	l := &Lock{name: name, key: m.Key(), token: resp.Kvs[0].CreateRevision, sess: sess, mutex: m}
	l.ctx, l.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	context.AfterFunc(sess.Ctx(), func() { l.cancel(fmt.Errorf("%w: session ended", ErrLost)) })
	l.wg.Add(1)
	go l.watchKey(client, resp.Header.Revision)
	return l, nil
}

// watchKey cancels the lock's context when its key is deleted behind its back (lease revoked
// or expired): etcd reports that before the next keepalive round trip would.
func (l *Lock) watchKey(client *clientv3.Client, rev int64) {
	defer l.wg.Done()
	for wr := range client.Watch(l.ctx, l.key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			l.cancel(fmt.Errorf("%w: watch on %s: %v", ErrLost, l.key, err))
			return
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				l.cancel(fmt.Errorf("%w: key %s deleted at revision %d", ErrLost, l.key, ev.Kv.ModRevision))
				return
			}
		}
	}
	if l.ctx.Err() == nil {
		l.cancel(fmt.Errorf("%w: watch on %s closed", ErrLost, l.key))
	}
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.name }

// Key returns the holder's etcd key.
func (l *Lock) Key() string { return l.key }

// Token returns the fencing token: the holder key's create revision, strictly greater than
// every earlier holder's.
func (l *Lock) Token() int64 { return l.token }

// Context returns a context cancelled when the lock is lost (cause wraps ErrLost) or released
// (cause ErrReleased).
func (l *Lock) Context() context.Context { return l.ctx }

// Guard returns a comparison that holds only while this lock is held, to make an etcd
// transaction conditional on holding it.
func (l *Lock) Guard() clientv3.Cmp { return l.mutex.IsOwner() }

// Release gives the lock up: it deletes the key and revokes the lease, so the next contender
// acquires at once. Idempotent; releasing a lost lock only cleans up.
func (l *Lock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		lost := l.ctx.Err() != nil
		l.cancel(ErrReleased)
		l.wg.Wait()
		var errs []error
		if !lost {
			if err := l.mutex.Unlock(ctx); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", l.key, err))
			}
		}
		if l.sess.Ctx().Err() != nil {
			l.sess.Orphan()
		} else if err := l.sess.Close(); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, fmt.Errorf("revoke lease: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			l.releaseErr = fmt.Errorf("release lock %s: %w", l.name, err)
		}
	})
	return l.releaseErr
}

// With runs fn while holding the lock called name. fn's context is cancelled if ctx ends or
// the lock is lost; if the lock was lost while fn ran, With's error wraps ErrLost (along with
// fn's own error, if any). The lock is released when fn returns.
func With(ctx context.Context, client *clientv3.Client, name string, fn func(ctx context.Context, token int64) error, opts ...Option) (err error) {
	l, err := Acquire(ctx, client, name, opts...)
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, l.Release(rctx))
	}()
	fnCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(l.Context(), func() { cancel(context.Cause(l.Context())) })()
	fnErr := fn(fnCtx, l.Token())
	if cause := context.Cause(l.Context()); errors.Is(cause, ErrLost) {
		return errors.Join(fnErr, fmt.Errorf("lock %s (token %d): %w", name, l.Token(), cause))
	}
	return fnErr
}
