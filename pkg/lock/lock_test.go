package lock_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/lock"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestContendersNeverOverlapAndTokensIncrease(t *testing.T) {
	srv := etcdtest.Start(t)
	clients := []*clientv3.Client{srv.Client(t), srv.Client(t), srv.Client(t)}
	const workers, rounds = 6, 4
	var (
		inside  atomic.Int32
		overlap atomic.Int32
		mu      sync.Mutex
		tokens  []int64 // in acquisition order: appended inside the critical section
	)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			c := clients[i%len(clients)]
			for range rounds {
				err := lock.With(ctxT(t), c, "migrations", func(ctx context.Context, token int64) error {
					if inside.Add(1) != 1 {
						overlap.Add(1)
					}
					mu.Lock()
					tokens = append(tokens, token)
					mu.Unlock()
					time.Sleep(time.Millisecond) // widen the window an overlap would need
					inside.Add(-1)
					return ctx.Err()
				})
				if err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := overlap.Load(); n != 0 {
		t.Fatalf("%d critical sections overlapped", n)
	}
	if len(tokens) != workers*rounds {
		t.Fatalf("%d critical sections ran, want %d", len(tokens), workers*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("token %d (acquisition %d) not above %d: %v", tokens[i], i, tokens[i-1], tokens)
		}
	}
	resp, err := srv.Client(t).Get(ctxT(t), "/cairn/locks/migrations/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("lock keys left after every release: %v %v", resp.Kvs, err)
	}
}

func TestHolderWhoseSessionDiesLosesTheLock(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	a, err := lock.Acquire(ctxT(t), srv.Client(t), "maint", lock.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *lock.Lock, 1)
	go func() {
		b, err := lock.Acquire(ctxT(t), srv.Client(t), "maint")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- b
	}()
	// Wait until b is queued behind a, then kill a's session from outside.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := admin.Get(ctxT(t), "/cairn/locks/maint/", clientv3.WithPrefix())
		if err == nil && len(resp.Kvs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second contender never queued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-got:
		t.Fatal("second contender acquired while the first held the lock")
	default:
	}
	resp, err := admin.Get(ctxT(t), a.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("holder key: %v %v", resp, err)
	}
	if _, err := admin.Revoke(ctxT(t), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Context().Done():
	case <-time.After(20 * time.Second):
		t.Fatal("holder's context not cancelled after its session died")
	}
	if cause := context.Cause(a.Context()); !errors.Is(cause, lock.ErrLost) {
		t.Fatalf("holder's cause = %v, want ErrLost", cause)
	}
	var b *lock.Lock
	select {
	case b = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("second contender did not acquire after the holder's session died")
	}
	if b == nil {
		t.FailNow()
	}
	if b.Token() <= a.Token() {
		t.Fatalf("new holder's token %d not above the lost holder's %d", b.Token(), a.Token())
	}
	// The lost holder's guard no longer holds: an etcd write fenced by it is refused.
	txn, err := admin.Txn(ctxT(t)).If(a.Guard()).Then(clientv3.OpPut("/fenced", "a")).Commit()
	if err != nil || txn.Succeeded {
		t.Fatalf("write guarded by the lost lock: succeeded=%v err=%v", txn != nil && txn.Succeeded, err)
	}
	if err := a.Release(ctxT(t)); err != nil {
		t.Fatalf("releasing a lost lock: %v", err)
	}
	if err := b.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctxT(t)); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if cause := context.Cause(b.Context()); !errors.Is(cause, lock.ErrReleased) {
		t.Fatalf("released lock's cause = %v", cause)
	}
}

func TestWithReportsLossDuringCriticalSection(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	err := lock.With(ctxT(t), srv.Client(t), "job", func(ctx context.Context, token int64) error {
		resp, err := admin.Get(ctx, "/cairn/locks/job/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 {
			t.Errorf("lock key: %v %v", resp, err)
			return nil
		}
		if resp.Kvs[0].CreateRevision != token {
			t.Errorf("token %d is not the key's create revision %d", token, resp.Kvs[0].CreateRevision)
		}
		// Not fn's ctx: the revocation cancels it, possibly before the reply arrives.
		if _, err := admin.Revoke(ctxT(t), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
			t.Error(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Second):
			t.Error("critical section's context not cancelled after the lock was lost")
		}
		return nil
	})
	if !errors.Is(err, lock.ErrLost) {
		t.Fatalf("With = %v, want ErrLost", err)
	}
}

func TestGivingUpLeavesNoWaitingKey(t *testing.T) {
	srv := etcdtest.Start(t)
	holder, err := lock.Acquire(ctxT(t), srv.Client(t), "busy")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lock.Acquire(ctx, srv.Client(t), "busy"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with an expiring context: %v, want DeadlineExceeded", err)
	}
	resp, err := srv.Client(t).Get(ctxT(t), "/cairn/locks/busy/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != holder.Key() {
		t.Fatalf("keys after a contender gave up: %v %v", resp.Kvs, err)
	}
	fnErr := errors.New("fn failed")
	_ = holder.Release(ctxT(t))
	if err := lock.With(ctxT(t), srv.Client(t), "busy", func(context.Context, int64) error { return fnErr }); !errors.Is(err, fnErr) {
		t.Fatalf("With = %v, want fn's error", err)
	}
}

func TestInvalidInput(t *testing.T) {
	_, err := lock.Acquire(context.Background(), nil, "bad name", lock.WithPrefix("x"), lock.WithTTL(time.Millisecond))
	for _, want := range []string{"client", "lock name", "prefix", "ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if !errors.Is(err, lock.ErrInvalid) {
		t.Fatalf("error %v is not ErrInvalid", err)
	}
}
