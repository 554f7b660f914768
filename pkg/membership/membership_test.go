package membership_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/membership"
)

func info(id string) membership.Info {
	return membership.Info{
		ID: id, Address: "127.0.0.1:7100", Pool: "default", Labels: map[string]string{"zone": "a"},
		Capacity: 4, Version: "test", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next watcher event, failing the test if none arrives.
func next(t *testing.T, ch <-chan membership.Event) membership.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for a membership event")
	}
	return membership.Event{}
}

func expect(t *testing.T, ch <-chan membership.Event, typ membership.EventType, id string) membership.Event {
	t.Helper()
	ev := next(t, ch)
	if ev.Type != typ || ev.Member.ID != id {
		t.Fatalf("event = %v %q, want %v %q", ev.Type, ev.Member.ID, typ, id)
	}
	return ev
}

func startWatcher(t *testing.T, c *clientv3.Client) (*membership.Watcher, chan membership.Event) {
	t.Helper()
	ch := make(chan membership.Event, 16)
	w, err := membership.NewWatcher(c, membership.WithEvents(ch), membership.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w, ch
}

func TestRegisterIsVisibleAndCloseRemovesAtOnce(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	w, events := startWatcher(t, admin)
	expect(t, events, membership.Synced, "")

	reg, err := membership.Register(ctxT(t), srv.Client(t), info("w1"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.Get(ctxT(t), "/cairn/workers/w1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("worker key: %v %v", resp, err)
	}
	var stored membership.Info
	if err := json.Unmarshal(resp.Kvs[0].Value, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.ID != "w1" || stored.Capacity != 4 || stored.Labels["zone"] != "a" || !stored.Started.Equal(info("w1").Started) {
		t.Fatalf("stored %+v, want %+v", stored, info("w1"))
	}
	if resp.Kvs[0].Lease == 0 {
		t.Fatal("worker key has no lease")
	}
	added := expect(t, events, membership.Added, "w1")
	if added.Member.Address != "127.0.0.1:7100" || added.Member.Incarnation != resp.Kvs[0].CreateRevision {
		t.Fatalf("added member %+v", added.Member)
	}
	if ms := w.Members(); len(ms) != 1 || ms[0].ID != "w1" {
		t.Fatalf("Members = %+v", ms)
	}

	// Update: same incarnation, new capacity.
	up := info("w1")
	up.Capacity = 8
	if err := reg.Update(ctxT(t), up); err != nil {
		t.Fatal(err)
	}
	if ev := expect(t, events, membership.Updated, "w1"); ev.Member.Capacity != 8 || ev.Member.Incarnation != added.Member.Incarnation {
		t.Fatalf("updated member %+v", ev.Member)
	}
	bad := info("w2")
	if err := reg.Update(ctxT(t), bad); !errors.Is(err, membership.ErrInvalid) {
		t.Fatalf("Update changing the id: %v, want ErrInvalid", err)
	}

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	// Gone at once: no TTL wait.
	resp, err = admin.Get(ctxT(t), "/cairn/workers/w1")
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("worker key after Close: %v %v", resp.Kvs, err)
	}
	expect(t, events, membership.Removed, "w1")
	select {
	case <-reg.Lost():
		t.Fatal("Close fired Lost")
	default:
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := reg.Update(ctxT(t), up); !errors.Is(err, membership.ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}
}

func TestRevokedLeaseFiresLost(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	_, events := startWatcher(t, admin)
	expect(t, events, membership.Synced, "")
	reg, err := membership.Register(ctxT(t), srv.Client(t), info("w1"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	expect(t, events, membership.Added, "w1")

	resp, err := admin.Get(ctxT(t), reg.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("worker key: %v %v", resp, err)
	}
	if _, err := admin.Revoke(ctxT(t), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.Lost():
	case <-time.After(20 * time.Second):
		t.Fatal("Lost did not fire after the lease was revoked")
	}
	if !errors.Is(reg.Err(), membership.ErrLost) {
		t.Fatalf("Err = %v, want ErrLost", reg.Err())
	}
	expect(t, events, membership.Removed, "w1")
	if err := reg.Update(ctxT(t), info("w1")); !errors.Is(err, membership.ErrLost) {
		t.Fatalf("Update after loss: %v, want ErrLost", err)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("Close after loss: %v", err)
	}
}

func TestDuplicateIDIsRefused(t *testing.T) {
	srv := etcdtest.Start(t)
	reg, err := membership.Register(ctxT(t), srv.Client(t), info("w1"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = membership.Register(ctxT(t), srv.Client(t), info("w1"), 5*time.Second)
	if !errors.Is(err, membership.ErrAlreadyRegistered) {
		t.Fatalf("second registration of w1: %v, want ErrAlreadyRegistered", err)
	}
	// The refused attempt must not have disturbed the first registration.
	select {
	case <-reg.Lost():
		t.Fatalf("first registration lost: %v", reg.Err())
	default:
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	reg2, err := membership.Register(ctxT(t), srv.Client(t), info("w1"), 5*time.Second)
	if err != nil {
		t.Fatalf("re-register after Close: %v", err)
	}
	_ = reg2.Close()
}

func TestWatcherListsExistingWorkersFirst(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, id := range []string{"b", "a"} {
		reg, err := membership.Register(ctxT(t), srv.Client(t), info(id), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Close() })
	}
	// Garbage under the prefix is skipped, not fatal.
	if _, err := srv.Client(t).Put(ctxT(t), "/cairn/workers/junk", "{not json"); err != nil {
		t.Fatal(err)
	}
	w, events := startWatcher(t, srv.Client(t))
	expect(t, events, membership.Added, "a")
	expect(t, events, membership.Added, "b")
	expect(t, events, membership.Synced, "")
	select {
	case <-w.Synced():
	default:
		t.Fatal("Synced not closed after the first list")
	}
	if _, ok := w.Member("junk"); ok {
		t.Fatal("an unreadable key became a member")
	}
}

func TestValidation(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	err := membership.Info{ID: "bad/id", Capacity: 0}.Validate()
	for _, want := range []string{"id", "address", "capacity", "started"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %q", err, want)
		}
	}
	if _, err := membership.Register(ctxT(t), c, info("w"), 500*time.Millisecond); !errors.Is(err, membership.ErrInvalid) {
		t.Errorf("ttl 500ms: %v, want ErrInvalid", err)
	}
	if _, err := membership.Register(ctxT(t), c, info("w"), time.Second, membership.WithPrefix("/nope")); !errors.Is(err, membership.ErrInvalid) {
		t.Errorf("prefix without a slash: %v, want ErrInvalid", err)
	}
	if _, err := membership.NewWatcher(nil); !errors.Is(err, membership.ErrInvalid) {
		t.Errorf("nil client: %v, want ErrInvalid", err)
	}
}
