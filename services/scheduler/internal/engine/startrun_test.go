package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// engineStart starts a run through Engine.StartRun (insert and start in the group commit).
func (h *harness) engineStart(wf *dag.Workflow, key string) (uuid.UUID, error) {
	h.t.Helper()
	ids := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		ids[i] = t.ID
	}
	params, err := wf.ResolveParams(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	run := model.Run{ID: uuid.New(), Namespace: model.DefaultNamespace, Workflow: wf.Name, Version: h.version[wf.Name], Params: params,
		IdempotencyKey: key, Trigger: model.TriggerManual}
	return run.ID, h.eng.StartRun(context.Background(), run, ids, wf)
}

// A run started through the engine is durable when StartRun returns and runs to the end.
func TestStartRunThroughTheGroupCommit(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 2, nil, nil)
	w.credits(2)
	id, err := h.engineStart(wf, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.GetRun(context.Background(), model.DefaultNamespace, id); err != nil {
		t.Fatalf("run not durable when StartRun returned: %v", err)
	}
	if d := w.runAll(id, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run %s, tasks %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, id)
}

// Starts that share an idempotency key, racing into the same batches: exactly one run is
// created, the others get a conflict and leave nothing behind — not in PostgreSQL, not in
// the engine, and not in the worker's credits (their roots may have been assigned in the
// batch whose insert failed).
func TestStartRunSameKeyOnceAndCreditsKept(t *testing.T) {
	h := newHarness(t)
	wf := h.apply(diamond)
	w := h.worker("w1", "default", 1, nil, nil) // one slot: a leaked credit stops everything
	w.credits(1)
	const n = 8
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = h.engineStart(wf, "same-key") })
	}
	wg.Wait()
	var winner uuid.UUID
	for i, err := range errs {
		switch {
		case err == nil:
			if winner != uuid.Nil {
				t.Fatalf("two runs created for one key: %s and %s", winner, ids[i])
			}
			winner = ids[i]
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("start %d: %v, want a conflict", i, err)
		default:
			if _, err := h.st.GetRun(context.Background(), model.DefaultNamespace, ids[i]); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("losing start %d left run %s behind: %v", i, ids[i], err)
			}
		}
	}
	if winner == uuid.Nil {
		t.Fatal("no start succeeded")
	}
	if d := w.runAll(winner, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("winner %s, tasks %v", d.Run.State, taskStates(d))
	}
	// The worker's single credit is intact: another run still gets dispatched and finishes.
	other, err := h.engineStart(wf, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := w.runAll(other, nil); d.Run.State != model.RunSucceeded {
		t.Fatalf("run after the conflicts %s, tasks %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, winner)
	assertInvariants(t, h.st, other)
}
