package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// rawSession is a session nobody reads (its messages are inspected directly).
func rawSession(id string) *engine.Session {
	return &engine.Session{WorkerID: id, Pool: "default", Capacity: 1, Out: make(chan engine.Outbound, 64), Kick: func(error) {}}
}

// TestSecondHelloForALiveStreamIsRefused: while a worker's stream is alive, a hello with its
// id is refused and changes nothing: the first stream keeps its attempt, which succeeds on it.
func TestSecondHelloForALiveStreamIsRefused(t *testing.T) {
	h := newHarness(t)
	wf := h.apply("name: one\ntasks:\n  - {id: only, type: noop}\n")
	w := h.worker("w1", "default", 1, nil, nil)
	w.sess.Seen(time.Now())
	w.credits(1)
	id := h.startRun(wf, nil)
	a := w.next()
	w.started(a)

	intruder := rawSession("w1")
	intruder.Seen(time.Now())
	err := h.eng.Attach(context.Background(), intruder, nil)
	if !errors.Is(err, engine.ErrStreamAlive) {
		t.Fatalf("second hello for a live stream: %v, want ErrStreamAlive", err)
	}
	select {
	case err := <-w.kicked:
		t.Fatalf("the first stream was kicked: %v", err)
	default:
	}
	select {
	case m := <-intruder.Out:
		t.Fatalf("the refused stream got a message: %+v", m)
	default:
	}
	if ack := w.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("the first stream's result after the refused hello: %+v", ack)
	}
	if d := h.waitRun(id); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	if as := attemptsOf(t, h, id, "only"); len(as) != 1 {
		t.Fatalf("%d attempts, want 1", len(as))
	}
	assertInvariants(t, h.st, id)
}

// TestHelloReplacesADeadStream: a stream that ended (its handler has not detached yet) or
// that has been silent longer than the stream timeout is replaced by a new hello, as a
// restarted worker's must be; the new stream re-adopts the running attempt.
func TestHelloReplacesADeadStream(t *testing.T) {
	for _, how := range []string{"ended", "silent"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			wf := h.apply("name: one\ntasks:\n  - {id: only, type: noop}\n")
			w := h.worker("w1", "default", 1, nil, nil)
			w.credits(1)
			id := h.startRun(wf, nil)
			a := w.next()
			w.started(a)
			if how == "ended" {
				w.sess.Seen(time.Now())
				done := make(chan struct{})
				close(done)
				w.sess.Done = done
			} else {
				w.sess.Seen(time.Now().Add(-engine.DefaultStreamTimeout - time.Second))
			}
			w2 := h.worker("w1", "default", 1, []engine.RunningAttempt{{AttemptID: a.AttemptID.String(), Token: a.Token}}, nil)
			select {
			case <-w.kicked:
			case <-time.After(10 * time.Second):
				t.Fatal("the dead stream was not kicked")
			}
			if ack := w2.finish(a, true, ""); !ack.Accepted {
				t.Fatalf("result on the new stream: %+v", ack)
			}
			if d := h.waitRun(id); d.Run.State != model.RunSucceeded {
				t.Fatalf("run %s", d.Run.State)
			}
			assertInvariants(t, h.st, id)
		})
	}
}

// TestResultOfAnotherWorkerIsRefused: worker w2 reports a start and results for w1's attempt,
// current and then stale: each is refused and nothing is recorded; w1's own result applies.
func TestResultOfAnotherWorkerIsRefused(t *testing.T) {
	h := newHarness(t)
	wf := h.apply("name: one\ntasks:\n  - {id: only, type: noop}\n")
	w1 := h.worker("w1", "default", 1, nil, nil)
	w2 := h.worker("w2", "default", 1, nil, nil)
	w1.credits(1)
	id := h.startRun(wf, nil)
	a := w1.next()
	fingerprint := func() string { // the run's attempts, task runs and events, as stored
		ctx := context.Background()
		as, err1 := h.st.ListAttempts(ctx, model.DefaultNamespace, id, "only")
		d, err2 := h.st.GetRun(ctx, model.DefaultNamespace, id)
		evs, err3 := h.st.EventsSince(ctx, model.DefaultNamespace, id, 0, 1000)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%+v\n%+v\n%d events", as, d.Tasks, len(evs))
	}
	settle := func() { // a round trip through the engine's loop, and its commit
		if _, err := h.eng.Workers(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	settle()
	before := fingerprint()

	// A start from w2 is ignored.
	w2.started(a)
	settle()
	if got := fingerprint(); got != before {
		t.Fatalf("w2's start of w1's attempt changed the database:\nbefore %s\nafter  %s", before, got)
	}
	// A result from w2 for the current attempt: refused, nothing recorded.
	if ack := w2.finish(a, true, ""); ack.Accepted || !strings.Contains(ack.Reason, "not assigned to worker w2") {
		t.Fatalf("w2's result for w1's attempt: %+v, want refused", ack)
	}
	settle()
	if got := fingerprint(); got != before {
		t.Fatalf("w2's result for w1's attempt changed the database:\nbefore %s\nafter  %s", before, got)
	}
	// w1's own start and result apply.
	w1.started(a)
	if ack := w1.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("w1's result: %+v", ack)
	}
	if d := h.waitRun(id); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s", d.Run.State)
	}
	// Now stale: w2's copy is still refused without a trace, w1's resend is recorded stale.
	settle()
	before = fingerprint()
	if ack := w2.finish(a, false, "forged"); ack.Accepted || !strings.Contains(ack.Reason, "not assigned") {
		t.Fatalf("w2's stale result: %+v, want refused", ack)
	}
	settle()
	if got := fingerprint(); got != before {
		t.Fatalf("w2's stale result changed the database:\nbefore %s\nafter  %s", before, got)
	}
	as := attemptsOf(t, h, id, "only")
	if len(as) != 1 || as[0].State != model.AttemptSucceeded || !as[0].StaleResultAt.IsZero() || as[0].WorkerID != "w1" {
		t.Fatalf("attempts %+v", as)
	}
	if ack := w1.finish(a, true, ""); ack.Accepted || !strings.HasPrefix(ack.Reason, "stale") {
		t.Fatalf("w1's duplicate: %+v, want stale", ack)
	}
	assertInvariants(t, h.st, id)
}
