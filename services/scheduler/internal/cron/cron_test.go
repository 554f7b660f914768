package cron_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/cron"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const everyMinute = `name: minutely
schedule: "* * * * *"
params: {mode: full}
tasks:
  - id: a
    type: noop
`

type fixture struct {
	t       *testing.T
	ctx     context.Context
	st      *store.Store
	cache   *engine.WorkflowCache
	now     time.Time
	mu      sync.Mutex
	planned []model.Run
}

func (f *fixture) cron(epoch int64) *cron.Cron {
	f.t.Helper()
	if _, err := f.st.TakeLeadership(f.ctx, epoch, "test"); err != nil {
		f.t.Fatal(err)
	}
	c, err := cron.New(cron.Config{Store: f.st, Epoch: epoch, Workflows: f.cache, Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewTextHandler(f.t.Output(), nil)),
		Plan: func(_ context.Context, r model.Run, _ *dag.Workflow) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.planned = append(f.planned, r)
			return nil
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) tick(c *cron.Cron, want int) {
	f.t.Helper()
	n, err := c.Tick(f.ctx)
	if err != nil || n != want {
		f.t.Fatalf("tick at %s: fired %d, %v; want %d", f.now.Format(time.RFC3339), n, err, want)
	}
}

func (f *fixture) runs() []model.Run {
	f.t.Helper()
	rs, _, err := f.st.ListRuns(f.ctx, model.DefaultNamespace, store.RunFilter{Workflow: "minutely"}, store.PageRequest{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

func (f *fixture) schedule() model.Schedule {
	f.t.Helper()
	s, err := f.st.GetSchedule(f.ctx, model.DefaultNamespace, "minutely")
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) put(epoch int64, yaml string, next time.Time) {
	f.t.Helper()
	if _, _, err := f.st.PutVersion(f.ctx, epoch, model.DefaultNamespace, "minutely", "", yaml, []byte("{}")); err != nil {
		f.t.Fatal(err)
	}
	if next.IsZero() {
		return
	}
	var b store.Batch
	b.Add(store.PutSchedule{Schedule: model.Schedule{Namespace: model.DefaultNamespace, Workflow: "minutely", Cron: "* * * * *", NextFireAt: next}})
	if res, err := f.st.Apply(f.ctx, epoch, &b); err != nil || res[0] != nil {
		f.t.Fatalf("put schedule: %v %v", err, res)
	}
}

func TestCronFiresOnceAndSkipsMissedFireTimes(t *testing.T) {
	pool := pgtest.NewPool(t)
	f := &fixture{t: t, ctx: context.Background(), st: store.New(pool)}
	f.cache = engine.NewWorkflowCache(f.st)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := f.cron(1)
	f.put(1, everyMinute, t0)

	f.now = t0.Add(-time.Second)
	f.tick(c, 0)

	f.now = t0.Add(10 * time.Second)
	f.tick(c, 1)
	f.tick(c, 0) // the same fire time never fires twice
	rs := f.runs()
	if len(rs) != 1 || rs[0].Trigger != model.TriggerSchedule || rs[0].IdempotencyKey != "schedule:2026-03-01T12:00:00Z" ||
		rs[0].Params["mode"] != "full" {
		t.Fatalf("runs after the first fire: %+v", rs)
	}
	if s := f.schedule(); !s.NextFireAt.Equal(t0.Add(time.Minute)) || !s.LastFireAt.Equal(t0) {
		t.Fatalf("schedule after the first fire: %+v", s)
	}
	if len(f.planned) != 1 || f.planned[0].ID != rs[0].ID || f.planned[0].State != model.RunPending {
		t.Fatalf("planned %+v", f.planned)
	}

	// A new leader (higher epoch) whose schedule row points at a fire time that already has
	// its run (as after a failover): no second run, and the schedule moves on.
	c2 := f.cron(2)
	f.put(2, everyMinute, t0)
	f.tick(c2, 0)
	if n := len(f.runs()); n != 1 {
		t.Fatalf("%d runs after re-firing a consumed fire time, want 1", n)
	}
	if s := f.schedule(); !s.NextFireAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("schedule not advanced past the consumed fire time: %+v", s)
	}
	// The deposed leader can no longer fire.
	f.now = t0.Add(90 * time.Second)
	if _, err := c.Tick(f.ctx); err == nil {
		t.Fatal("the deposed leader's tick succeeded")
	}

	// Leader down from 12:00:10 to 12:05:10: 12:01 … 12:04 are skipped, 12:05 fires.
	f.now = t0.Add(5*time.Minute + 10*time.Second)
	f.tick(c2, 1)
	rs = f.runs()
	if len(rs) != 2 || rs[0].IdempotencyKey != "schedule:2026-03-01T12:05:00Z" {
		t.Fatalf("runs after the outage: %+v", rs)
	}
	if s := f.schedule(); !s.NextFireAt.Equal(t0.Add(6 * time.Minute)) {
		t.Fatalf("schedule after the outage: %+v", s)
	}
	evs, err := f.st.EventsSince(f.ctx, model.DefaultNamespace, rs[0].ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	noted := false
	for _, e := range evs {
		if e.Kind == model.EventNote && strings.Contains(e.Message, "4 earlier fire time(s)") {
			noted = true
		}
	}
	if !noted {
		t.Fatalf("no note about the 4 skipped fire times in %+v", evs)
	}

	// A latest version without a schedule drops the row when it comes due.
	f.put(2, strings.Replace(everyMinute, "schedule: \"* * * * *\"\n", "", 1), time.Time{})
	f.now = t0.Add(7 * time.Minute)
	f.tick(c2, 0)
	if _, err := f.st.GetSchedule(f.ctx, model.DefaultNamespace, "minutely"); err == nil {
		t.Fatal("the schedule row of a workflow without schedule was kept")
	}
}

// Schedules are per namespace: one workflow name scheduled in two namespaces fires one run in
// each, with each namespace's own DAG, and the fire time's idempotency key does not collide.
func TestCronFiresEachNamespacesSchedule(t *testing.T) {
	st := store.New(pgtest.NewPool(t))
	f := &fixture{t: t, ctx: context.Background(), st: st, cache: engine.NewWorkflowCache(st),
		now: time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)}
	c := f.cron(1)
	if _, err := st.CreateNamespace(f.ctx, 1, model.Namespace{Name: "team-a"}); err != nil {
		t.Fatal(err)
	}
	teamYAML := strings.Replace(everyMinute, "id: a", "id: team-task", 1)
	for ns, yaml := range map[string]string{model.DefaultNamespace: everyMinute, "team-a": teamYAML} {
		if _, _, err := st.PutVersion(f.ctx, 1, ns, "minutely", "", yaml, nil); err != nil {
			t.Fatal(err)
		}
		var b store.Batch
		b.Add(store.PutSchedule{Schedule: model.Schedule{Namespace: ns, Workflow: "minutely", Cron: "* * * * *",
			NextFireAt: f.now.Truncate(time.Minute)}})
		if res, err := st.Apply(f.ctx, 1, &b); err != nil || res[0] != nil {
			t.Fatalf("put schedule in %s: %v %v", ns, err, res)
		}
	}
	f.tick(c, 2)
	for ns, task := range map[string]string{model.DefaultNamespace: "a", "team-a": "team-task"} {
		rs, _, err := st.ListRuns(f.ctx, ns, store.RunFilter{Workflow: "minutely"}, store.PageRequest{})
		if err != nil || len(rs) != 1 || rs[0].Namespace != ns || rs[0].Trigger != model.TriggerSchedule {
			t.Fatalf("runs of %s: %+v %v; want one scheduled run", ns, rs, err)
		}
		d, err := st.GetRun(f.ctx, ns, rs[0].ID)
		if err != nil || len(d.Tasks) != 1 || d.Tasks[0].TaskID != task {
			t.Fatalf("run of %s: %+v %v; want its own task %s", ns, d.Tasks, err, task)
		}
		if sc, err := st.GetSchedule(f.ctx, ns, "minutely"); err != nil || !sc.NextFireAt.After(f.now) {
			t.Fatalf("schedule of %s not advanced: %+v %v", ns, sc, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.planned) != 2 || f.planned[0].Namespace == f.planned[1].Namespace {
		t.Fatalf("planned %+v, want one run per namespace handed to the engine", f.planned)
	}
}
