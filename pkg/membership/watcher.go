package membership

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-io/cairn/pkg/lifecycle"
	"github.com/cairn-io/cairn/pkg/retry"
)

// Member is a live worker as the watcher sees it.
type Member struct {
	Info
	// Incarnation identifies one registration of the worker ID (the key's create revision).
	// A worker that re-registers under the same ID has a new, larger incarnation.
	Incarnation int64

	modRevision int64 // the key's mod revision when last read
}

// EventType is the kind of a membership change.
type EventType int

const (
	// Added: a worker registered (or the watcher saw it for the first time).
	Added EventType = iota + 1
	// Updated: a registered worker rewrote its information (same incarnation).
	Updated
	// Removed: a worker's key is gone (clean exit, lease expired or revoked). Member is the
	// last information seen of it.
	Removed
	// Synced: the watcher has just (re)listed the whole prefix; the events before it brought
	// the consumer's view in line with the live set. Member is empty.
	Synced
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	case Synced:
		return "synced"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one membership change.
type Event struct {
	Type   EventType
	Member Member
}

// Watcher follows the live workers under <prefix>workers/. It implements lifecycle.Service:
// Start lists and watches in the background. Members gives the current set; with WithEvents,
// every change is also sent, in order, to the consumer's channel.
type Watcher struct {
	lifecycle.StartStop

	client  *clientv3.Client
	prefix  string // <prefix>workers/
	log     *slog.Logger
	events  chan<- Event
	backoff retry.Policy

	mu       sync.Mutex
	members  map[string]Member
	rev      int64 // last revision applied; 0 before the first list
	synced   chan struct{}
	isSynced bool
}

var _ lifecycle.Service = (*Watcher)(nil)

// NewWatcher returns a Watcher; Start begins following.
func NewWatcher(client *clientv3.Client, opts ...Option) (*Watcher, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: etcd client is nil", ErrInvalid)
	}
	return &Watcher{
		client:  client,
		prefix:  WorkersPrefix(o.prefix),
		log:     o.log.With(slog.String("component", "membership-watcher")),
		events:  o.events,
		backoff: retry.Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: true},
		members: map[string]Member{},
		synced:  make(chan struct{}),
	}, nil
}

// Start begins listing and watching in the background.
func (w *Watcher) Start(ctx context.Context) error {
	return w.StartFunc(ctx, func(context.Context) (lifecycle.RunFunc, error) { return w.run, nil })
}

// Synced returns a channel closed once the first full list has been applied.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Members returns the live workers, ordered by ID.
func (w *Watcher) Members() []Member {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Member, 0, len(w.members))
	for _, m := range w.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Member returns the live worker with the given ID.
func (w *Watcher) Member(id string) (Member, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.members[id]
	return m, ok
}

func (w *Watcher) run(ctx context.Context) error {
	failures := 0
	relist := w.revision() == 0
	for ctx.Err() == nil {
		var err error
		if relist {
			err = w.list(ctx)
		}
		if err == nil {
			relist, err = w.watch(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			w.log.Warn("membership watch interrupted", slog.Any("error", err), slog.Bool("relist", relist))
		} else {
			failures = 0
		}
		t := time.NewTimer(w.backoff.Delay(failures, nil))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

func (w *Watcher) revision() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rev
}

// list reads the whole prefix and emits the difference from the current view, then Synced.
func (w *Watcher) list(ctx context.Context) error {
	resp, err := w.client.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list %s: %w", w.prefix, err)
	}
	live := map[string]Member{}
	for _, kv := range resp.Kvs {
		if m, ok := w.decode(kv); ok {
			live[m.ID] = m
		}
	}
	var evs []Event
	w.mu.Lock()
	for id, old := range w.members {
		if m, ok := live[id]; !ok || m.Incarnation != old.Incarnation {
			evs = append(evs, Event{Type: Removed, Member: old})
		}
	}
	for id, m := range live {
		old, ok := w.members[id]
		switch {
		case !ok || old.Incarnation != m.Incarnation:
			evs = append(evs, Event{Type: Added, Member: m})
		case old.modRevision != m.modRevision:
			evs = append(evs, Event{Type: Updated, Member: m})
		}
	}
	w.members = live
	w.rev = resp.Header.Revision
	first := !w.isSynced
	w.isSynced = true
	w.mu.Unlock()
	// Removals first, then additions, each in ID order: a deterministic replay.
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := cmp.Compare(rank(a.Type), rank(b.Type)); c != 0 {
			return c
		}
		return cmp.Compare(a.Member.ID, b.Member.ID)
	})
	evs = append(evs, Event{Type: Synced})
	if first {
		close(w.synced)
	}
	return w.send(ctx, evs...)
}

func rank(t EventType) int {
	if t == Removed {
		return 0
	}
	return 1
}

// watch follows changes from the last applied revision. It returns relist=true when that
// revision was compacted away and the view must be rebuilt from a fresh list.
func (w *Watcher) watch(ctx context.Context) (relist bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := w.client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.revision()+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) || wr.CompactRevision != 0 {
				return true, fmt.Errorf("watch %s: revision %d compacted: %w", w.prefix, w.revision()+1, err)
			}
			return false, fmt.Errorf("watch %s: %w", w.prefix, err)
		}
		for _, ev := range wr.Events {
			if err := w.apply(ctx, ev); err != nil {
				return false, err
			}
		}
	}
	if ctx.Err() != nil {
		return false, nil
	}
	return false, fmt.Errorf("watch %s: channel closed", w.prefix)
}

func (w *Watcher) apply(ctx context.Context, ev *clientv3.Event) error {
	id := strings.TrimPrefix(string(ev.Kv.Key), w.prefix)
	var evs []Event
	w.mu.Lock()
	old, had := w.members[id]
	switch ev.Type {
	case mvccpb.DELETE:
		if had {
			delete(w.members, id)
			evs = append(evs, Event{Type: Removed, Member: old})
		}
	case mvccpb.PUT:
		m, ok := w.decode(ev.Kv)
		switch {
		case !ok:
			if had { // an unreadable rewrite: the worker is no longer usable
				delete(w.members, id)
				evs = append(evs, Event{Type: Removed, Member: old})
			}
		case !had:
			w.members[id] = m
			evs = append(evs, Event{Type: Added, Member: m})
		case old.Incarnation != m.Incarnation:
			w.members[id] = m
			evs = append(evs, Event{Type: Removed, Member: old}, Event{Type: Added, Member: m})
		default:
			w.members[id] = m
			evs = append(evs, Event{Type: Updated, Member: m})
		}
	}
	w.rev = max(w.rev, ev.Kv.ModRevision)
	w.mu.Unlock()
	return w.send(ctx, evs...)
}

// decode reads a worker key; a key that does not hold a valid Info is logged and skipped.
func (w *Watcher) decode(kv *mvccpb.KeyValue) (Member, bool) {
	id := strings.TrimPrefix(string(kv.Key), w.prefix)
	var info Info
	if err := json.Unmarshal(kv.Value, &info); err != nil {
		w.log.Warn("ignoring unreadable worker key", slog.String("key", string(kv.Key)), slog.Any("error", err))
		return Member{}, false
	}
	if info.ID != id {
		w.log.Warn("ignoring worker key whose id differs from its key", slog.String("key", string(kv.Key)), slog.String("id", info.ID))
		return Member{}, false
	}
	return Member{Info: info, Incarnation: kv.CreateRevision, modRevision: kv.ModRevision}, true
}

func (w *Watcher) send(ctx context.Context, evs ...Event) error {
	if w.events == nil {
		return nil
	}
	for _, ev := range evs {
		select {
		case w.events <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
