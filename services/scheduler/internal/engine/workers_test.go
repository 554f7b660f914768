package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// TestWorkersReportsLoad: Workers answers each attached worker's attempts in flight, live
// queue entries, draining flag and last message time, by pool, and forgets a detached one.
func TestWorkersReportsLoad(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(wideYAML("six", 6))
	w1 := h.worker("w1", "default", 2, nil, nil)
	gpu := h.worker("w2", "gpu", 3, nil, nil)
	seen := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	w1.sess.Seen(seen)
	id := h.startRun(wf, nil)
	w1.credits(1)
	a := w1.next()
	if err := h.eng.Draining(context.Background(), gpu.sess); err != nil {
		t.Fatal(err)
	}

	loads, err := h.eng.Workers(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(loads) != 2 || loads[0].ID != "w1" || loads[1].ID != "w2" {
		t.Fatalf("workers %+v, want w1 and w2 in ID order", loads)
	}
	// Six queued tasks: one assigned to w1, its queue (room for max(4, 2×capacity)) holds
	// four of the rest, the pool's backlog the last.
	if l := loads[0]; l.Pool != "default" || l.Capacity != 2 || l.Running != 1 || l.Queued != 4 || l.Draining || !l.LastSeen.Equal(seen) {
		t.Errorf("w1 = %+v, want default pool, capacity 2, 1 running, 4 queued, last seen %v", l, seen)
	}
	if l := loads[1]; l.Pool != "gpu" || l.Running != 0 || l.Queued != 0 || !l.Draining || !l.LastSeen.IsZero() {
		t.Errorf("w2 = %+v, want an idle draining gpu worker never seen", l)
	}
	if only, err := h.eng.Workers(context.Background(), "gpu"); err != nil || len(only) != 1 || only[0].ID != "w2" {
		t.Errorf("gpu workers %+v (%v), want only w2", only, err)
	}

	// The attempt ends: w1 has nothing in flight.
	w1.started(a)
	w1.finish(a, true, "")
	loads, err = h.eng.Workers(context.Background(), "default")
	if err != nil || len(loads) != 1 || loads[0].Running != 0 {
		t.Errorf("after its attempt ended, w1 = %+v (%v), want 0 running", loads, err)
	}

	h.eng.Detach(gpu.sess)
	if loads, err := h.eng.Workers(context.Background(), "gpu"); err != nil || len(loads) != 0 {
		t.Errorf("gpu workers after w2 detached: %+v (%v), want none", loads, err)
	}
	if d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id); err != nil || d.Run.State != model.RunRunning {
		t.Errorf("run %s (%v), want RUNNING (five tasks left)", d.Run.State, err)
	}
}

// TestReattachKeepsTheLoadExact: a worker that reconnects (same leader) with one attempt
// finished while it was away (a pending result), one still running, and one it never
// received (lost) is left with exactly the running one in its load — not a negative count,
// which would make routing prefer it and let it announce more credits than its capacity.
func TestReattachKeepsTheLoadExact(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(wideYAML("five", 5))
	w := h.worker("w1", "default", 3, nil, nil)
	w.credits(3)
	id := h.startRun(wf, nil)
	done, running, lost := w.next(), w.next(), w.next()
	w.started(done)
	w.started(running)
	h.eng.Detach(w.sess)

	res := engine.Result{ResultID: uuid.NewString(), AttemptID: done.AttemptID.String(), Token: done.Token, Succeeded: true,
		Started: time.Now(), Finished: time.Now()}
	w2 := h.worker("w1", "default", 3, []engine.RunningAttempt{{AttemptID: running.AttemptID.String(), Token: running.Token}},
		[]engine.Result{res})
	if ack := w2.ack(res.ResultID); !ack.Accepted {
		t.Fatalf("pending result not accepted: %+v", ack)
	}
	loads, err := h.eng.Workers(context.Background(), "")
	if err != nil || len(loads) != 1 || loads[0].Running != 1 {
		t.Fatalf("after re-attach: %+v (%v), want w1 with exactly 1 running (%s; %s done, %s lost)",
			loads, err, running.TaskID, done.TaskID, lost.TaskID)
	}
	// Its credits are capped by what it runs: of three announced, two are free, so two of
	// the three queued tasks (two never assigned, and the lost one) are dispatched, not three.
	w2.credits(3)
	w2.next()
	w2.next()
	w2.none(200 * time.Millisecond)
	d, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id)
	if err != nil {
		t.Fatal(err)
	}
	if st := taskStates(d); st[done.TaskID] != model.TaskSucceeded || st[running.TaskID] != model.TaskRunning {
		t.Errorf("tasks %v, want %s SUCCEEDED and %s RUNNING", st, done.TaskID, running.TaskID)
	}
}

// TestReloadKeepsAttemptsOfAnAttachedWorker: a run reloaded from PostgreSQL (a group of it
// failed) while its worker's stream stays attached keeps that worker's attempts: the worker
// has no reason to say hello again, so they must not wait for a re-attachment and be lost
// after the adoption grace (they would run twice), and its load still counts them.
func TestReloadKeepsAttemptsOfAnAttachedWorker(t *testing.T) {
	h := newHarness(t) // AdoptGrace 300 ms
	wf := h.apply("name: pair\ntasks:\n  - {id: a, type: noop}\n  - {id: b, type: noop}\n")
	w := h.worker("w1", "default", 2, nil, nil)
	w.credits(2)
	id := h.startRun(wf, nil)
	a, b := w.next(), w.next()
	w.started(a)
	if err := h.eng.InjectPoison(context.Background(), id); err != nil { // the run is reloaded
		t.Fatal(err)
	}
	time.Sleep(1 * time.Second) // > AdoptGrace: an attempt waiting for a hello would be lost now
	loads, err := h.eng.Workers(context.Background(), "")
	if err != nil || len(loads) != 1 || loads[0].Running != 2 {
		t.Fatalf("after the reload: %+v (%v), want w1 running 2", loads, err)
	}
	for _, x := range []*engine.Assignment{a, b} {
		if ack := w.finish(x, true, ""); !ack.Accepted {
			t.Fatalf("result of %s after the reload: %+v, want accepted", x.TaskID, ack)
		}
	}
	d := h.waitRun(id)
	if d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s: %v", d.Run.State, taskStates(d))
	}
	for _, task := range []string{"a", "b"} {
		if as := attemptsOf(t, h, id, task); len(as) != 1 {
			t.Errorf("task %s ran %d attempts, want 1 (not lost by the reload)", task, len(as))
		}
	}
	assertInvariants(t, h.st, id)
}

// TestFailedResultGroupKeepsTheLoad: a result applied in memory whose group then fails for
// good leaves its attempt active in PostgreSQL; the run is reloaded and the worker's load
// counts the attempt again (it had been taken off when the result was applied).
func TestFailedResultGroupKeepsTheLoad(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(wideYAML("pair", 2))
	w := h.worker("w1", "default", 2, nil, nil)
	w.credits(2)
	id := h.startRun(wf, nil)
	a, b := w.next(), w.next()
	w.started(a)
	w.started(b)
	res := engine.Result{ResultID: uuid.NewString(), AttemptID: a.AttemptID.String(), Token: a.Token, Succeeded: true,
		Started: time.Now(), Finished: time.Now()}
	if err := h.eng.InjectPoisonedResult(context.Background(), w.sess, res); err != nil {
		t.Fatal(err)
	}
	// A query is answered while its batch is handled, before that batch commits; the second
	// one comes after the batch holding the result (and the reload that follows it).
	var loads []engine.WorkerLoad
	var err error
	for range 2 {
		loads, err = h.eng.Workers(context.Background(), "")
	}
	if err != nil || len(loads) != 1 || loads[0].Running != 2 {
		t.Fatalf("after the failed result group: %+v (%v), want w1 running 2 (the attempt is active again)", loads, err)
	}
	if ack := w.finish(a, true, ""); !ack.Accepted {
		t.Fatalf("the result sent again: %+v, want accepted", ack)
	}
	w.finish(b, true, "")
	if d := h.waitRun(id); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s: %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, id)
}
