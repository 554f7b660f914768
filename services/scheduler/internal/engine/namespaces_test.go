package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// applyIn stores yaml as a workflow of namespace ns (created if needed) and returns it.
func (h *harness) applyIn(ns, yaml string) *dag.Workflow {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.st.GetNamespace(ctx, ns); errors.Is(err, store.ErrNotFound) {
		if _, err := h.st.CreateNamespace(ctx, h.epoch, model.Namespace{Name: ns}); err != nil {
			h.t.Fatal(err)
		}
	}
	wf, err := dag.Parse("test.yaml", []byte(yaml), dag.DefaultLimits())
	if err != nil {
		h.t.Fatalf("parse: %v", err)
	}
	if _, _, err := h.st.PutVersion(ctx, h.epoch, ns, wf.Name, wf.Description, yaml, nil); err != nil {
		h.t.Fatalf("put version: %v", err)
	}
	return wf
}

// startIn starts a run of version 1 of wf in namespace ns through Engine.StartRun.
func (h *harness) startIn(ns string, wf *dag.Workflow) uuid.UUID {
	h.t.Helper()
	ids := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		ids[i] = t.ID
	}
	run := model.Run{ID: uuid.New(), Namespace: ns, Workflow: wf.Name, Version: 1, Params: map[string]string{},
		Trigger: model.TriggerManual}
	if err := h.eng.StartRun(context.Background(), run, ids, wf); err != nil {
		h.t.Fatalf("start run in %s: %v", ns, err)
	}
	return run.ID
}

// The same workflow name in two namespaces is two workflows for the engine: each run executes
// its own namespace's DAG, also after a failover with a cold workflow cache (a cache or a
// rebuild keyed by name alone would load the other DAG and fail on its task ids). Mutations
// naming the wrong namespace find nothing, and dead letters land in their run's namespace.
func TestNamespacesInTheEngine(t *testing.T) {
	h := newHarness(t)
	defWF := h.applyIn(model.DefaultNamespace, "name: etl\ntasks:\n  - {id: a, type: noop}\n")
	teamWF := h.applyIn("team-a", `
name: etl
defaults: {retries: 0}
tasks:
  - {id: x, type: noop}
  - {id: y, type: shell, command: ["false"], depends_on: [x]}
`)
	defRun := h.startIn(model.DefaultNamespace, defWF)
	teamRun := h.startIn("team-a", teamWF)

	// Another namespace's run cannot be cancelled or retried from here, while it is active.
	if err := h.eng.CancelRun(context.Background(), model.DefaultNamespace, teamRun, "x"); !errors.Is(err, engine.ErrTerminal) {
		t.Fatalf("cancel team-a's run in default: %v, want ErrTerminal (the schedapi then answers NOT_FOUND)", err)
	}
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, teamRun); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("retry team-a's run in default: %v, want ErrNotFound", err)
	}

	// A failover before any worker came: a new process, nothing cached.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.epoch, h.wfs = 2, engine.NewWorkflowCache(h.st)
	h.start()
	w := h.worker("w1", "default", 2, nil, nil)
	w.credits(2)
	var seen []string
	for range 3 { // a (default), x and y (team-a)
		a := w.next()
		ns := model.DefaultNamespace
		if a.RunID == teamRun {
			ns = "team-a"
		}
		if a.Namespace != ns {
			t.Errorf("assignment of %s/%s carries namespace %q, want %q", a.RunID, a.TaskID, a.Namespace, ns)
		}
		seen = append(seen, ns+"/"+a.TaskID)
		w.started(a)
		w.finish(a, a.TaskID != "y", "exit 1")
		w.credits(1)
	}
	slices.Sort(seen)
	if want := []string{"default/a", "team-a/x", "team-a/y"}; !slices.Equal(seen, want) {
		t.Fatalf("tasks run: %v, want %v (each run its own namespace's DAG)", seen, want)
	}
	if d := h.waitRunIn(model.DefaultNamespace, defRun); d.Run.State != model.RunSucceeded {
		t.Fatalf("default's run: %s %v", d.Run.State, taskStates(d))
	}
	d := h.waitRunIn("team-a", teamRun)
	if d.Run.State != model.RunFailed || d.Run.Namespace != "team-a" {
		t.Fatalf("team-a's run: %s in %q %v, want FAILED in team-a", d.Run.State, d.Run.Namespace, taskStates(d))
	}

	// The dead letter is team-a's.
	open, err := h.st.OpenDeadLetters(context.Background(), "team-a", teamRun)
	if err != nil || len(open) != 1 {
		t.Fatalf("team-a's open dead letters: %v %v", open, err)
	}
	dl := open["y"]
	if got, err := h.st.GetDeadLetter(context.Background(), "team-a", dl); err != nil || got.Namespace != "team-a" {
		t.Fatalf("dead letter: %+v %v", got, err)
	}
	if _, err := h.eng.ReplayDeadLetter(context.Background(), model.DefaultNamespace, dl); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("replay team-a's dead letter in default: %v, want ErrNotFound", err)
	}
	if err := h.eng.PurgeDeadLetter(context.Background(), model.DefaultNamespace, dl); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("purge team-a's dead letter in default: %v, want ErrNotFound", err)
	}
	if err := h.eng.RetryRun(context.Background(), model.DefaultNamespace, teamRun); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("retry team-a's ended run in default: %v, want ErrNotFound", err)
	}
	// In its own namespace the replay works, and the run goes on with team-a's DAG.
	if run, err := h.eng.ReplayDeadLetter(context.Background(), "team-a", dl); err != nil || run != teamRun {
		t.Fatalf("replay in team-a: run %s, %v", run, err)
	}
	a := w.next()
	if a.RunID != teamRun || a.TaskID != "y" || a.Namespace != "team-a" {
		t.Fatalf("after the replay: assignment %s/%s in %q, want team-a's y", a.RunID, a.TaskID, a.Namespace)
	}
	w.started(a)
	w.finish(a, true, "")
	if d := h.waitRunIn("team-a", teamRun); d.Run.State != model.RunSucceeded {
		t.Fatalf("team-a's run after the replay: %s %v", d.Run.State, taskStates(d))
	}
	assertInvariants(t, h.st, defRun)
	assertInvariants(t, h.st, teamRun)
}
