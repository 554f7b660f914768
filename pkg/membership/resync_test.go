package membership

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/etcdtest"
)

// TestWatcherResyncsAfterCompaction gives a watcher a view that is out of date at a revision
// that has since been compacted (as after a long disconnection), and checks that it lists
// again and emits exactly the difference: the vanished worker removed, the re-registered one
// replaced, the new one added, the unchanged one left alone.
func TestWatcherResyncsAfterCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mk := func(id string) Info {
		return Info{ID: id, Address: "127.0.0.1:1", Capacity: 1, Started: time.Now()}
	}
	register := func(id string) *Registration {
		r, err := Register(ctx, c, mk(id), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	register("stays")
	gone := register("gone")
	again := register("again")

	// The view a watcher had built by now.
	ch := make(chan Event, 32)
	w, err := NewWatcher(c, WithEvents(ch))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.list(ctx); err != nil {
		t.Fatal(err)
	}
	for len(ch) > 0 {
		<-ch
	}
	before := map[string]Member{}
	for _, m := range w.Members() {
		before[m.ID] = m
	}
	staleRev := w.revision()

	// While it is "disconnected": one worker leaves, one re-registers, one joins.
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	register("again")
	register("new")
	resp, err := c.Get(ctx, "anything")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if w.revision() != staleRev {
		t.Fatal("test set-up: the watcher moved on")
	}

	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []Event
	for {
		select {
		case ev := <-ch:
			got = append(got, ev)
		case <-time.After(20 * time.Second):
			t.Fatalf("no Synced after the compacted resume; events so far: %+v", got)
		}
		if got[len(got)-1].Type == Synced {
			break
		}
	}
	type ev struct {
		typ EventType
		id  string
	}
	want := []ev{{Removed, "again"}, {Removed, "gone"}, {Added, "again"}, {Added, "new"}, {Synced, ""}}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Type != want[i].typ || got[i].Member.ID != want[i].id {
			t.Fatalf("event %d = %v %q, want %v %q (all: %+v)", i, got[i].Type, got[i].Member.ID, want[i].typ, want[i].id, got)
		}
	}
	if got[0].Member.Incarnation != before["again"].Incarnation || got[2].Member.Incarnation <= before["again"].Incarnation {
		t.Fatalf("re-registered worker: removed incarnation %d, added %d, had %d",
			got[0].Member.Incarnation, got[2].Member.Incarnation, before["again"].Incarnation)
	}
	ids := []string{}
	for _, m := range w.Members() {
		ids = append(ids, m.ID)
	}
	if len(ids) != 3 || ids[0] != "again" || ids[1] != "new" || ids[2] != "stays" {
		t.Fatalf("members after resync: %v", ids)
	}

	// And it keeps watching after the resync.
	register("later")
	select {
	case e := <-ch:
		if e.Type != Added || e.Member.ID != "later" {
			t.Fatalf("event after resync: %v %q", e.Type, e.Member.ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event after the resync")
	}
}
