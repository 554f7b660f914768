package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// The planner puts ops that touch different rows in one statement per kind, and an op after
// every earlier op it conflicts with, so that set execution equals applying in order.
func TestPlanSegments(t *testing.T) {
	r1, r2 := uuid.New(), uuid.New()
	tt := func(run uuid.UUID, task string, from, to model.TaskState) store.TaskTransition {
		return store.TaskTransition{RunID: run, TaskID: task, From: from, To: to}
	}
	assign := func(task string, token int64) []store.Op {
		return []store.Op{
			store.TaskTransition{RunID: r1, TaskID: task, From: model.TaskQueued, To: model.TaskAssigned,
				Assign: &store.Assignment{Token: token, WorkerID: "w"}},
			store.InsertAttempt{ID: uuid.New(), RunID: r1, TaskID: task, Number: 1, Token: token, WorkerID: "w"},
		}
	}
	finish := func(task string, token int64) store.Op {
		return store.FinishAttempt{RunID: r1, TaskID: task, Token: token, To: model.AttemptSucceeded}
	}
	event := store.AppendEvent{Event: model.Event{RunID: r1, Kind: model.EventNote}}
	for _, tc := range []struct {
		name   string
		groups [][]store.Op
		want   []string
	}{
		{"a result and an assignment of other tasks share one statement per kind",
			[][]store.Op{
				{finish("a", 1), tt(r1, "a", model.TaskRunning, model.TaskSucceeded), event},
				assign("b", 2),
				{finish("c", 3), tt(r1, "c", model.TaskRunning, model.TaskSucceeded), event},
			},
			[]string{"0.1,1.0,2.1 | 1.1 | 0.0,2.0"}},
		{"a task moved twice needs a second level",
			[][]store.Op{{tt(r1, "a", model.TaskPending, model.TaskQueued)}, assign("a", 1)},
			[]string{"0.0 | 1.1", "1.0"}},
		{"a finish before its task's reassignment keeps its order",
			[][]store.Op{{finish("a", 1)}, assign("a", 2)},
			[]string{"1.1 | 0.0", "1.0"}},
		{"a finish after its task's reassignment sees the new token either way",
			[][]store.Op{assign("a", 2), {finish("a", 1)}},
			[]string{"0.0 | 0.1 | 1.0"}},
		{"a run inserted before its tasks move",
			[][]store.Op{{store.InsertRun{Run: model.Run{ID: r2}, TaskIDs: []string{"x"}}, tt(r2, "x", model.TaskPending, model.TaskQueued)}},
			[]string{"0.0 | 0.1"}},
		{"a task moved before its run exists",
			[][]store.Op{{tt(r2, "x", model.TaskPending, model.TaskQueued)}, {store.InsertRun{Run: model.Run{ID: r2}, TaskIDs: []string{"x"}}}},
			[]string{"0.0", "1.0"}},
		{"a dead letter before its run's insert stays before it",
			[][]store.Op{{store.InsertDeadLetter{DeadLetter: model.DeadLetter{ID: uuid.New(), RunID: r2, TaskID: "x", Workflow: "wf"}}},
				{store.InsertRun{Run: model.Run{ID: r2}, TaskIDs: []string{"x"}}}},
			[]string{"0.0", "1.0"}},
		{"a run transition does not cut its tasks' transitions",
			[][]store.Op{{store.RunTransition{RunID: r1, From: model.RunPending, To: model.RunRunning}, tt(r1, "a", model.TaskPending, model.TaskQueued)},
				{tt(r1, "b", model.TaskPending, model.TaskQueued), store.RunTransition{RunID: r1, From: model.RunRunning, To: model.RunCancelled}}},
			[]string{"0.1,1.0 | 0.0", "1.1"}}, // one run moved twice: a second level
		{"a start and its attempt's finish in one group are one update",
			[][]store.Op{{store.StartAttempt{Token: 1}, finish("a", 1)}, {store.StartAttempt{Token: 2}}},
			[]string{"1.0 | 0.1"}},
		{"a start and its attempt's finish in two groups are two updates",
			[][]store.Op{{store.StartAttempt{Token: 1}}, {finish("a", 1)}},
			[]string{"0.0 | 1.0"}},
		{"finish then start of one attempt",
			[][]store.Op{{finish("a", 1)}, {store.StartAttempt{Token: 1}}},
			[]string{"0.0", "1.0"}},
		{"a finish that does not name its task is a barrier",
			[][]store.Op{{tt(r1, "a", model.TaskPending, model.TaskQueued)}, {store.FinishAttempt{Token: 9, To: model.AttemptLost}},
				{tt(r1, "b", model.TaskPending, model.TaskQueued)}},
			[]string{"0.0 | 1.0", "2.0"}},
		{"a start carried by its result: each row updated once",
			[][]store.Op{
				{tt(r1, "a", model.TaskAssigned, model.TaskRunning), store.StartAttempt{Token: 1}, finish("a", 1), tt(r1, "a", model.TaskRunning, model.TaskSucceeded), event},
				{tt(r1, "b", model.TaskAssigned, model.TaskRunning), store.StartAttempt{Token: 2}, finish("b", 2), tt(r1, "b", model.TaskRunning, model.TaskSucceeded), event},
				assign("c", 3),
			},
			[]string{"0.3,1.3,2.0 | 2.1 | 0.2,1.2"}},
		{"a fused pair is not fused again with a third transition",
			[][]store.Op{{tt(r1, "a", model.TaskAssigned, model.TaskRunning), tt(r1, "a", model.TaskRunning, model.TaskQueued),
				tt(r1, "a", model.TaskRunning, model.TaskSucceeded)}},
			[]string{"0.1", "0.2"}},
		{"no fusion when the second transition expects another attempt",
			[][]store.Op{{tt(r1, "a", model.TaskAssigned, model.TaskRunning),
				store.TaskTransition{RunID: r1, TaskID: "a", From: model.TaskRunning, Attempt: 1, To: model.TaskSucceeded}}},
			[]string{"0.0", "0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b store.Batch
			for _, g := range tc.groups {
				b.Add(g...)
			}
			if got := store.PlanSegments(&b); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("segments\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Differential test: random batches of the engine's op shapes, with deliberate conflicts
// and stale results, give the same results and the same rows through Apply (set-based) as
// through one statement per op in order.
func TestApplyMatchesSequentialApplication(t *testing.T) {
	set, seq := newEnv(t), newEnv(t)
	set.workflow("wf")
	seq.workflow("wf")
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	var setPath int
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 42))
		g := newOpGen(rng, int64(seed+1)<<20)
		for _, e := range []*env{set, seq} {
			g.createRuns(e)
		}
		for round := range 4 {
			b := g.batch(round%2 == 0)
			before := set.s.SavepointRetries()
			gotSet, errSet := set.s.Apply(set.ctx, epoch, b)
			gotSeq, errSeq := seq.s.ApplySequential(seq.ctx, epoch, b)
			if (errSet == nil) != (errSeq == nil) {
				t.Fatalf("seed %d round %d: Apply error %v, sequential error %v", seed, round, errSet, errSeq)
			}
			if set.s.SavepointRetries() == before && errSet == nil {
				setPath++
			}
			if a, s := errStrings(gotSet), errStrings(gotSeq); !reflect.DeepEqual(a, s) {
				t.Fatalf("seed %d round %d: results differ\n set %q\n seq %q\nplan %q", seed, round, a, s, store.PlanSegments(b))
			}
			if a, s := g.dump(set), g.dump(seq); a != s {
				t.Fatalf("seed %d round %d: rows differ\n--- set\n%s\n--- sequential\n%s\nplan %q", seed, round, a, s, store.PlanSegments(b))
			}
		}
	}
	if setPath < seeds { // most batches must exercise the set path, or the test proves nothing
		t.Fatalf("only %d of %d batches were applied set-based", setPath, seeds*4)
	}
	t.Logf("%d of %d batches applied set-based", setPath, seeds*4)
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, err := range errs {
		if err != nil {
			out[i] = err.Error()
		}
	}
	return out
}

type simTask struct {
	run     uuid.UUID
	id      string
	state   model.TaskState
	attempt int
	token   int64
	old     []int64 // earlier tokens, for stale results
}

// opGen produces batches shaped like the engine's, tracking the state they would leave if
// every op applied; a fraction of ops is corrupted so that they (and what follows) conflict.
type opGen struct {
	rng    *rand.Rand
	tokens int64
	runs   []uuid.UUID
	late   uuid.UUID // a run inserted by a batch, not up front
	tasks  []*simTask
	ids    map[int64]uuid.UUID
	at     time.Time
}

func newOpGen(rng *rand.Rand, tokenBase int64) *opGen {
	g := &opGen{rng: rng, tokens: tokenBase, ids: map[int64]uuid.UUID{},
		at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for range 2 {
		g.runs = append(g.runs, g.uuid())
	}
	g.late = g.uuid()
	for ri, r := range g.runs {
		for i := range 4 {
			g.tasks = append(g.tasks, &simTask{run: r, id: fmt.Sprintf("t%d%d", ri, i), state: model.TaskPending})
		}
	}
	return g
}

func (g *opGen) uuid() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(g.rng.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (g *opGen) createRuns(e *env) {
	e.t.Helper()
	for ri, r := range g.runs {
		var ids []string
		for i := range 4 {
			ids = append(ids, fmt.Sprintf("t%d%d", ri, i))
		}
		if _, created, err := e.s.CreateRun(e.ctx, epoch, model.Run{ID: r, Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual}, ids); err != nil || !created {
			e.t.Fatalf("create run: %v %v", created, err)
		}
	}
}

func (g *opGen) chance(p float64) bool { return g.rng.Float64() < p }

// corrupt returns a (possibly) wrong expected attempt or token.
func (g *opGen) corrupt(attempt int, token int64) (int, int64) {
	if g.chance(0.08) {
		return attempt + 1, token
	}
	if token != 0 && g.chance(0.05) {
		return attempt, token + 1
	}
	return attempt, token
}

func (g *opGen) event(t *simTask, to model.TaskState) store.Op {
	return store.AppendEvent{Event: model.Event{RunID: t.run, TaskID: t.id, Kind: model.EventTaskState,
		From: string(t.state), To: string(to), Attempt: t.attempt, Message: fmt.Sprintf("%s→%s", t.state, to)}}
}

// batch returns 6–20 groups; with split, every op is its own group (conflicts are then
// recorded per op instead of sending the whole batch down the savepoint path).
func (g *opGen) batch(split bool) *store.Batch {
	var groups [][]store.Op
	n := 6 + g.rng.IntN(15)
	for range n {
		if ops := g.step(); len(ops) > 0 {
			groups = append(groups, ops)
		}
	}
	b := &store.Batch{}
	for _, ops := range groups {
		if split {
			for _, op := range ops {
				b.Add(op)
			}
		} else {
			b.Add(ops...)
		}
	}
	return b
}

// step picks a random task and emits what the engine would do next with it.
func (g *opGen) step() []store.Op {
	if g.late != uuid.Nil && g.chance(0.05) {
		// A new run and, in the same batch, its first task queued (sometimes in reverse).
		r := g.late
		g.late = uuid.Nil
		ins := store.InsertRun{Run: model.Run{ID: r, Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual}, TaskIDs: []string{"x"}}
		t := &simTask{run: r, id: "x", state: model.TaskPending}
		g.tasks = append(g.tasks, t)
		return []store.Op{ins, store.RunTransition{RunID: r, From: model.RunPending, To: model.RunRunning}}
	}
	if g.chance(0.05) {
		r := g.runs[g.rng.IntN(len(g.runs))]
		return []store.Op{store.RunTransition{RunID: r, From: model.RunPending, To: model.RunRunning}}
	}
	t := g.tasks[g.rng.IntN(len(g.tasks))]
	att, tok := g.corrupt(t.attempt, t.token)
	switch t.state {
	case model.TaskPending:
		ops := []store.Op{store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, To: model.TaskQueued}, g.event(t, model.TaskQueued)}
		t.state = model.TaskQueued
		return ops
	case model.TaskQueued, model.TaskRetryWait:
		if t.state == model.TaskRetryWait {
			ops := []store.Op{store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, To: model.TaskQueued}}
			t.state = model.TaskQueued
			return ops
		}
		g.tokens++
		if t.token != 0 {
			t.old = append(t.old, t.token)
		}
		id := g.uuid()
		g.ids[g.tokens] = id
		ops := []store.Op{
			store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, To: model.TaskAssigned,
				Assign: &store.Assignment{Token: g.tokens, WorkerID: "w1"}},
			store.InsertAttempt{ID: id, RunID: t.run, TaskID: t.id, Number: t.attempt + 1, Token: g.tokens, WorkerID: "w1"},
			g.event(t, model.TaskAssigned),
		}
		t.state, t.attempt, t.token = model.TaskAssigned, t.attempt+1, g.tokens
		return ops
	case model.TaskAssigned, model.TaskRunning:
		if g.chance(0.1) && len(t.old) > 0 { // a zombie's result
			old := t.old[g.rng.IntN(len(t.old))]
			return []store.Op{store.FinishAttempt{RunID: t.run, TaskID: t.id, Token: old, To: model.AttemptSucceeded, Reported: true}}
		}
		if t.state == model.TaskAssigned && g.chance(0.3) { // the start carried by the result
			started := g.at.Add(time.Duration(g.rng.IntN(1000)) * time.Millisecond)
			to := model.TaskSucceeded
			fin := store.FinishAttempt{RunID: t.run, TaskID: t.id, Token: t.token, To: model.AttemptSucceeded, Reported: true}
			if g.chance(0.3) {
				fin.To, fin.FailureKind, fin.Error = model.AttemptFailed, model.FailureTimeout, "timed out"
				to = model.TaskFailed
			}
			att2, tok2 := g.corrupt(t.attempt, t.token)
			ops := []store.Op{
				store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, Token: tok, To: model.TaskRunning, StartedAt: started},
				store.StartAttempt{Token: t.token, DeadlineAt: g.at.Add(time.Hour), StartedAt: started},
				g.event(t, model.TaskRunning),
				fin,
				store.TaskTransition{RunID: t.run, TaskID: t.id, From: model.TaskRunning, Attempt: att2, Token: tok2, To: to, Error: fin.Error},
				g.event(t, to),
			}
			t.state = to
			return ops
		}
		if t.state == model.TaskAssigned && g.chance(0.4) {
			started := g.at.Add(time.Duration(g.rng.IntN(1000)) * time.Millisecond)
			ops := []store.Op{
				store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, Token: tok, To: model.TaskRunning, StartedAt: started},
				store.StartAttempt{Token: t.token, DeadlineAt: g.at.Add(time.Hour), StartedAt: started},
			}
			t.state = model.TaskRunning
			return ops
		}
		var ops []store.Op
		code := g.rng.IntN(3)
		fin := store.FinishAttempt{RunID: t.run, TaskID: t.id, Token: t.token, To: model.AttemptSucceeded, Reported: true,
			Output: []byte(fmt.Sprintf("out %d", t.token))}
		if g.chance(0.1) {
			fin.RunID = uuid.Nil // executed as a barrier
		}
		to := model.TaskSucceeded
		var next time.Time
		switch {
		case code == 0:
		case code == 1:
			fin.To, fin.FailureKind, fin.ExitCode, fin.Error = model.AttemptFailed, model.FailureExitCode, &code, "exit 1"
			to, next = model.TaskRetryWait, g.at.Add(time.Minute)
		default:
			fin.To, fin.FailureKind, fin.Error = model.AttemptLost, model.FailureLost, "worker lost"
			to = model.TaskQueued
		}
		ops = append(ops, fin,
			store.TaskTransition{RunID: t.run, TaskID: t.id, From: t.state, Attempt: att, Token: tok, To: to, NextAttemptAt: next, Error: fin.Error},
			g.event(t, to))
		t.state = to
		return ops
	}
	return nil // terminal
}

// dump returns the rows of this generator's runs with the transaction times reduced to
// set / not set (the two databases commit at different times).
func (g *opGen) dump(e *env) string {
	e.t.Helper()
	runs := append([]uuid.UUID{}, g.runs...)
	for _, t := range g.tasks {
		if t.id == "x" {
			runs = append(runs, t.run)
		}
	}
	var out string
	for _, q := range []string{
		`SELECT coalesce(string_agg(format('%s %s %s %s', id, state, error, (started_at IS NULL, finished_at IS NULL)), E'\n' ORDER BY id), '')
			FROM runs WHERE id = ANY($1)`,
		`SELECT coalesce(string_agg(format('%s/%s %s a%s t%s w%s b%s %s %L %s', run_id, task_id, state, attempt, fencing_token, worker_id,
				attempt_base, next_attempt_at, last_error, (started_at IS NULL, finished_at IS NULL)), E'\n' ORDER BY run_id, task_id), '')
			FROM task_runs WHERE run_id = ANY($1)`,
		`SELECT coalesce(string_agg(format('%s %s/%s #%s t%s %s %s %s %s %s %s %L %s %s %L', id, run_id, task_id, number, fencing_token, worker_id,
				state, failure_kind, exit_code, http_status, encode(output, 'escape'), error, deadline_at,
				(started_at IS NULL, finished_at IS NULL, stale_result_at IS NULL), stale_outcome), E'\n' ORDER BY fencing_token), '')
			FROM attempts WHERE run_id = ANY($1)`,
		`SELECT coalesce(string_agg(format('%s/%s %s %s→%s #%s %L', run_id, task_id, kind, from_state, to_state, attempt, message), E'\n' ORDER BY seq), '')
			FROM events WHERE run_id = ANY($1)`,
	} {
		var s string
		if err := e.pool.QueryRow(context.Background(), q, runs).Scan(&s); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
		out += s + "\n--\n"
	}
	return out
}

// A fused start+finish must not finish an attempt that already started: the start's
// expectation (ASSIGNED) fails, so the whole group fails, as it does applied in order.
func TestFusedStartFinishKeepsTheStartsExpectation(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	token := e.toRunning(r.ID, "a", model.TaskPending, 0) // attempt 1 RUNNING
	var b store.Batch
	b.Add(
		store.TaskTransition{RunID: r.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, Token: token, To: model.TaskSucceeded},
		store.StartAttempt{Token: token},
		store.FinishAttempt{RunID: r.ID, TaskID: "a", Token: token, To: model.AttemptSucceeded, Reported: true},
	)
	if got := store.PlanSegments(&b); !reflect.DeepEqual(got, []string{"0.0 | 0.2"}) {
		t.Fatalf("plan %q: the start and finish were not fused", got)
	}
	res, err := e.s.Apply(e.ctx, epoch, &b)
	if err != nil {
		t.Fatal(err)
	}
	wantIs(t, res[0], store.ErrConflict)
	if st := e.task(r.ID, "a").State; st != model.TaskRunning {
		t.Fatalf("task %s, want RUNNING (group must not apply)", st)
	}
	if n := count(e, `SELECT count(*) FROM attempts WHERE fencing_token = $1 AND state = 'RUNNING'`, token); n != 1 {
		t.Fatal("the attempt was finished by a group whose start conflicted")
	}
}

// Runs inserted by one set statement: an idempotency key taken earlier in the batch or
// before it, or a run id inserted twice, conflicts exactly as in order.
func TestInsertRunsSetBased(t *testing.T) {
	set, seq := newEnv(t), newEnv(t)
	set.workflow("wf")
	seq.workflow("wf")
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	run := func(i int, key string, tasks ...string) store.InsertRun {
		return store.InsertRun{Run: model.Run{ID: ids[i], Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual, IdempotencyKey: key}, TaskIDs: tasks}
	}
	var first store.Batch
	first.Add(run(0, "k0", "a"))
	var b store.Batch
	b.Add(run(1, "", "a", "b", "c"))
	b.Add(run(2, "k2", "a"))
	b.Add(run(3, "k2", "a")) // key taken two groups earlier
	b.Add(run(4, "k0", "a")) // key taken by an earlier batch
	b.Add(run(1, "", "x"))   // id taken earlier in the batch
	b.Add(store.TaskTransition{RunID: ids[1], TaskID: "b", From: model.TaskPending, To: model.TaskQueued})
	if got := store.PlanSegments(&b); len(got) != 2 {
		t.Fatalf("plan %q: want the inserts in two levels (one id twice)", got)
	}
	for _, e := range []*env{set, seq} {
		if _, err := e.s.Apply(e.ctx, epoch, &first); err != nil {
			t.Fatal(err)
		}
	}
	gotSet, err := set.s.Apply(set.ctx, epoch, &b)
	if err != nil {
		t.Fatal(err)
	}
	gotSeq, err := seq.s.ApplySequential(seq.ctx, epoch, &b)
	if err != nil {
		t.Fatal(err)
	}
	if a, s := errStrings(gotSet), errStrings(gotSeq); !reflect.DeepEqual(a, s) {
		t.Fatalf("results differ\n set %q\n seq %q", a, s)
	}
	for i, want := range []bool{true, true, false, false, false, true} {
		if (gotSet[i] == nil) != want {
			t.Errorf("group %d: %v, want applied=%v", i, gotSet[i], want)
		}
	}
	for _, e := range []*env{set, seq} {
		if n := count(e, `SELECT count(*) FROM task_runs`); n != 5 {
			t.Errorf("%d task runs, want 5 (1 + 3 + 1)", n)
		}
	}
}

// A group that inserts a run and appends its events fails as a conflict — not as a
// foreign-key error of the whole batch — when the run's idempotency key is taken, and the
// other groups of the batch apply.
func TestRunInsertConflictWithItsEvents(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	insert := func(key string) (store.InsertRun, store.AppendEvent) {
		id := uuid.New()
		return store.InsertRun{Run: model.Run{ID: id, Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual, IdempotencyKey: key}, TaskIDs: []string{"a"}},
			store.AppendEvent{Event: model.Event{RunID: id, Kind: model.EventNote, Message: "started"}}
	}
	ir0, ev0 := insert("k")
	e.mustApply(ir0, ev0)
	var b store.Batch
	ir1, ev1 := insert("k") // key taken
	ir2, ev2 := insert("")
	b.Add(ir1, ev1, store.TaskTransition{RunID: ir1.Run.ID, TaskID: "a", From: model.TaskPending, To: model.TaskQueued})
	b.Add(ir2, ev2)
	res, err := e.s.Apply(e.ctx, epoch, &b)
	if err != nil {
		t.Fatalf("batch failed as a whole: %v", err)
	}
	wantIs(t, res[0], store.ErrConflict)
	if res[1] != nil {
		t.Fatalf("independent group: %v", res[1])
	}
	if n := count(e, `SELECT count(*) FROM runs`); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}
