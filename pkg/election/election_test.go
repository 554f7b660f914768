package election_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"go.uber.org/zap"

	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdlocal"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/lifecycle"
)

const testTTL = 2 * time.Second

// event is one entry of the leadership history, in the real-time order it was recorded.
type event struct {
	start bool // true: OnElected began; false: its ctx was observed cancelled
	who   string
	lead  election.Leadership
	cause error
}

// recorder is the OnElected of every candidate in a test: it keeps the history and counts the
// candidates that are leading at the same time.
type recorder struct {
	mu        sync.Mutex
	events    []event
	active    atomic.Int32
	maxActive atomic.Int32
}

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) history() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

func (r *recorder) onElected(who string) func(context.Context, election.Leadership) error {
	return func(ctx context.Context, l election.Leadership) error {
		n := r.active.Add(1)
		for {
			m := r.maxActive.Load()
			if n <= m || r.maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		r.add(event{start: true, who: who, lead: l})
		<-ctx.Done()
		r.add(event{who: who, lead: l, cause: context.Cause(ctx)})
		r.active.Add(-1)
		return nil
	}
}

// leaders returns who leads according to the electors themselves.
func leaders(els map[string]*election.Elector) []string {
	var who []string
	for name, el := range els {
		if _, ok := el.Leadership(); ok {
			who = append(who, name)
		}
	}
	return who
}

// leaderNow returns who leads ("" if none does), failing if several candidates claim to: in
// tests where leadership only changes hands through Stop or Resign that never happens.
func leaderNow(t *testing.T, els map[string]*election.Elector) string {
	t.Helper()
	switch who := leaders(els); len(who) {
	case 0:
		return ""
	case 1:
		return who[0]
	default:
		t.Fatalf("several candidates report leading: %v", who)
		return ""
	}
}

// onlyLeader reports whether exactly the named candidate leads.
func onlyLeader(els map[string]*election.Elector, name string) bool {
	who := leaders(els)
	return len(who) == 1 && who[0] == name
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newElector(t *testing.T, c *clientv3.Client, addr string, onElected func(context.Context, election.Leadership) error) *election.Elector {
	t.Helper()
	el, err := election.New(election.Config{Client: c, Value: addr, SessionTTL: testTTL, OnElected: onElected,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(el.Stop)
	return el
}

// checkStrictHandover asserts the history is a sequence of non-overlapping terms with strictly
// increasing epochs: every term's end is recorded before the next term's start.
func checkStrictHandover(t *testing.T, r *recorder) {
	t.Helper()
	h := r.history()
	if m := r.maxActive.Load(); m > 1 {
		t.Errorf("%d candidates led at the same time", m)
	}
	var prev *event
	for i := range h {
		e := h[i]
		if i%2 == 0 {
			if !e.start {
				t.Fatalf("history[%d]: expected a term start, got an end of %s: %+v", i, e.who, h)
			}
			if prev != nil && e.lead.Epoch <= prev.lead.Epoch {
				t.Errorf("epoch went from %d (%s) to %d (%s): not strictly increasing", prev.lead.Epoch, prev.who, e.lead.Epoch, e.who)
			}
			prev = &h[i]
		} else if e.start || e.who != prev.who || e.lead != prev.lead {
			t.Fatalf("history[%d]: expected the end of %s's term, got %+v (history %+v)", i, prev.who, e, h)
		}
	}
}

func TestOneLeaderAtATimeAcrossStops(t *testing.T) {
	srv := etcdtest.Start(t)
	var r recorder
	els := map[string]*election.Elector{}
	for _, name := range []string{"a", "b", "c"} {
		els[name] = newElector(t, srv.Client(t), name+":7000", r.onElected(name))
		if err := els[name].Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stopped := map[string]bool{}
	for round := range 3 {
		var leader string
		waitFor(t, fmt.Sprintf("a leader in round %d", round), func() bool {
			leader = leaderNow(t, els)
			return leader != ""
		})
		if stopped[leader] {
			t.Fatalf("stopped candidate %s leads", leader)
		}
		l, err := els[leader].Leader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l.Value != leader+":7000" {
			t.Fatalf("Leader() = %+v, want %s's address", l, leader)
		}
		els[leader].Stop()
		stopped[leader] = true
		if _, ok := els[leader].Leadership(); ok {
			t.Fatalf("%s still reports leading after Stop", leader)
		}
	}
	if _, err := election.Leader(context.Background(), srv.Client(t), ""); !errors.Is(err, election.ErrNoLeader) {
		t.Fatalf("Leader after every candidate stopped: %v, want ErrNoLeader", err)
	}
	h := r.history()
	if len(h) != 6 {
		t.Fatalf("history has %d events, want 3 terms: %+v", len(h), h)
	}
	checkStrictHandover(t, &r)
	for _, e := range h {
		if !e.start && !errors.Is(e.cause, context.Canceled) && !errors.Is(e.cause, lifecycle.ErrStopped) {
			t.Errorf("term of %s ended with cause %v, want a stop", e.who, e.cause)
		}
	}
}

func TestResignHandsOver(t *testing.T) {
	srv := etcdtest.Start(t)
	var r recorder
	els := map[string]*election.Elector{
		"a": newElector(t, srv.Client(t), "a:7000", r.onElected("a")),
		"b": newElector(t, srv.Client(t), "b:7000", r.onElected("b")),
	}
	for _, el := range els {
		if err := el.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Resign back and forth: the other candidate is first in line each time.
	var first string
	waitFor(t, "a leader", func() bool { first = leaderNow(t, els); return first != "" })
	who := first
	campaigning := func() bool {
		resp, err := srv.Client(t).Get(context.Background(), "/cairn/scheduler/leader/", clientv3.WithPrefix())
		return err == nil && len(resp.Kvs) == 2
	}
	for i := range 4 {
		waitFor(t, "both candidates to campaign", campaigning)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := els[who].Resign(ctx); err != nil {
			t.Fatalf("resign %d: %v", i, err)
		}
		cancel()
		other := map[string]string{"a": "b", "b": "a"}[who]
		waitFor(t, other+" to lead after "+who+" resigned", func() bool { return leaderNow(t, els) == other })
		who = other
	}
	checkStrictHandover(t, &r)
	h := r.history()
	for _, e := range h[:len(h)-1] {
		if !e.start && !errors.Is(e.cause, election.ErrResigned) {
			t.Errorf("term of %s ended with %v, want ErrResigned", e.who, e.cause)
		}
	}
	// Resign of a follower is a no-op.
	follower := map[string]string{"a": "b", "b": "a"}[who]
	if err := els[follower].Resign(context.Background()); err != nil {
		t.Fatalf("follower resign: %v", err)
	}
	if leaderNow(t, els) != who {
		t.Fatal("a follower's Resign changed the leader")
	}
}

func TestRevokedSessionLosesLeadership(t *testing.T) {
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	var r recorder
	els := map[string]*election.Elector{
		"a": newElector(t, srv.Client(t), "a:7000", r.onElected("a")),
		"b": newElector(t, srv.Client(t), "b:7000", r.onElected("b")),
	}
	for _, el := range els {
		if err := el.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	waitFor(t, "a leader", func() bool { first = leaderNow(t, els); return first != "" })
	firstTerm, _ := els[first].Leadership()
	second := map[string]string{"a": "b", "b": "a"}[first]

	// Simulate the lease expiring (partition, long GC pause): revoke it behind the leader's back.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := admin.Get(ctx, firstTerm.Key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read leader key: %v %v", resp, err)
	}
	if _, err := admin.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}

	// The deposed leader may still claim office for a moment after etcd elected the next one
	// (it learns of the deletion through its own watch): wait for the claims to settle.
	waitFor(t, second+" to take over", func() bool { return onlyLeader(els, second) })
	var ended *event
	waitFor(t, first+"'s leader context to be cancelled", func() bool {
		for _, e := range r.history() {
			if !e.start && e.who == first {
				ended = &e
				return true
			}
		}
		return false
	})
	if !errors.Is(ended.cause, election.ErrLeadershipLost) && !errors.Is(ended.cause, election.ErrSessionLost) {
		t.Fatalf("deposed leader's cause = %v, want ErrLeadershipLost or ErrSessionLost", ended.cause)
	}
	secondTerm, ok := els[second].Leadership()
	if !ok || secondTerm.Epoch <= firstTerm.Epoch {
		t.Fatalf("new term %+v (leading %v) does not raise epoch %d", secondTerm, ok, firstTerm.Epoch)
	}
	// The deposed candidate campaigns again with a new session and waits behind the new leader.
	waitFor(t, first+" to campaign again", func() bool {
		resp, err := admin.Get(context.Background(), "/cairn/scheduler/leader/", clientv3.WithPrefix())
		return err == nil && len(resp.Kvs) == 2
	})
	if !onlyLeader(els, second) {
		t.Fatalf("leadership moved again without a cause: %v lead", leaders(els))
	}
	// Across processes, etcd may elect the successor a moment before the deposed leader's
	// watch fires: that overlap is what the epoch fencing in PostgreSQL is for. Report it.
	for i, e := range r.history() {
		t.Logf("history[%d]: start=%v who=%s epoch=%d cause=%v", i, e.start, e.who, e.lead.Epoch, e.cause)
	}
}

func TestObserveFollowsLeaders(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := election.Observe(ctx, srv.Client(t), "")
	if err != nil {
		t.Fatal(err)
	}
	next := func(what string) election.Leadership {
		t.Helper()
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("observe channel closed while waiting for %s", what)
			}
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out observing %s", what)
		}
		return election.Leadership{}
	}
	if l := next("the initial state"); !l.IsZero() {
		t.Fatalf("first observation %+v, want no leader", l)
	}
	var r recorder
	a := newElector(t, srv.Client(t), "a:7000", r.onElected("a"))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	la := next("a's election")
	if la.Value != "a:7000" || la.Epoch <= 0 {
		t.Fatalf("observed %+v, want a:7000 with an epoch", la)
	}
	b := newElector(t, srv.Client(t), "b:7000", r.onElected("b"))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to campaign", func() bool {
		resp, err := srv.Client(t).Get(context.Background(), "/cairn/scheduler/leader/", clientv3.WithPrefix())
		return err == nil && len(resp.Kvs) == 2
	})
	a.Stop()
	// a's resignation and b's election may be seen as one change or as "none" then b.
	lb := next("b's election")
	if lb.IsZero() {
		lb = next("b's election after an empty moment")
	}
	if lb.Value != "b:7000" || lb.Epoch <= la.Epoch {
		t.Fatalf("observed %+v after a stopped, want b:7000 with an epoch above %d", lb, la.Epoch)
	}
	b.Stop()
	if l := next("nobody leading"); !l.IsZero() {
		t.Fatalf("observed %+v after every candidate stopped, want no leader", l)
	}
	cancel()
	for range ch {
	}
}

func TestSessionLostWhenEtcdGoesAway(t *testing.T) {
	// etcdtest.Server.Stop followed by its cleanup closes the embedded server twice, which
	// panics in etcd; run a server whose Close this test guards itself.
	srv, err := etcdlocal.Start(etcdlocal.Config{Dir: t.TempDir(), NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	stopEtcd := sync.OnceFunc(srv.Close)
	t.Cleanup(stopEtcd)
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var r recorder
	el := newElector(t, c, "a:7000", r.onElected("a"))
	if err := el.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to lead", func() bool { _, ok := el.Leadership(); return ok })
	t0 := time.Now()
	stopEtcd()
	t.Logf("etcd stopped in %v", time.Since(t0))
	waitFor(t, "the leader context to be cancelled after etcd went away", func() bool {
		h := r.history()
		return len(h) == 2 && !h[1].start
	})
	if c := r.history()[1].cause; !errors.Is(c, election.ErrSessionLost) && !errors.Is(c, election.ErrLeadershipLost) {
		t.Fatalf("cause = %v, want a lost session", c)
	}
	t.Logf("leader context cancelled %v after etcd stopped", time.Since(t0))
	el.Stop() // bounded even though etcd is gone: must return
	t.Logf("elector stopped %v after etcd stopped", time.Since(t0))
}

func TestConfigErrors(t *testing.T) {
	_, err := election.New(election.Config{Prefix: "cairn", SessionTTL: -time.Second})
	if err == nil || !errors.Is(err, election.ErrInvalidConfig) {
		t.Fatalf("New with an empty config: %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"Client", "must end with", "Value", "OnElected", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := election.Observe(context.Background(), nil, "/x"); !errors.Is(err, election.ErrInvalidConfig) {
		t.Fatalf("Observe with a bad prefix: %v", err)
	}
}
