package store_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

func TestPutVersion(t *testing.T) {
	e := newEnv(t)
	y1, y2 := "name: wf\n", "name: wf\ndescription: two\n"
	v1, created, err := e.s.PutVersion(e.ctx, epoch, defNS, "wf", "one", y1, []byte(`{"v":1}`))
	if err != nil || !created || v1.Version != 1 || v1.Hash != model.HashYAML(y1) || v1.YAML != y1 || string(v1.Compiled) != `{"v":1}` {
		t.Fatalf("first put: %+v %v %v", v1, created, err)
	}
	again, created, err := e.s.PutVersion(e.ctx, epoch, defNS, "wf", "one", y1, []byte(`ignored`))
	if err != nil || created || again.Version != 1 || string(again.Compiled) != `{"v":1}` {
		t.Fatalf("identical put: %+v %v %v", again, created, err)
	}
	v2, created, err := e.s.PutVersion(e.ctx, epoch, defNS, "wf", "two", y2, nil)
	if err != nil || !created || v2.Version != 2 {
		t.Fatalf("second put: %+v %v %v", v2, created, err)
	}
	if w, _ := e.s.GetWorkflow(e.ctx, defNS, "wf"); w.LatestVersion != 2 || w.Description != "two" {
		t.Fatalf("workflow after v2: %+v", w)
	}
	// Re-applying v1's YAML returns version 1 and makes it the latest again.
	back, created, err := e.s.PutVersion(e.ctx, epoch, defNS, "wf", "one", y1, nil)
	if err != nil || created || back.Version != 1 {
		t.Fatalf("re-apply v1: %+v %v %v", back, created, err)
	}
	if latest, _ := e.s.GetVersion(e.ctx, defNS, "wf", 0); latest.Version != 1 {
		t.Fatalf("latest after re-apply: %d", latest.Version)
	}
	if v, err := e.s.GetVersion(e.ctx, defNS, "wf", 2); err != nil || v.YAML != y2 {
		t.Fatalf("get v2: %+v %v", v, err)
	}
	for _, err := range []error{
		func() error { _, err := e.s.GetVersion(e.ctx, defNS, "wf", 3); return err }(),
		func() error { _, err := e.s.GetVersion(e.ctx, defNS, "nope", 0); return err }(),
		func() error { _, err := e.s.GetWorkflow(e.ctx, defNS, "nope"); return err }(),
		func() error { _, _, err := e.s.ListVersions(e.ctx, defNS, "nope", store.PageRequest{}); return err }(),
	} {
		wantIs(t, err, store.ErrNotFound)
	}
	_, _, err = e.s.PutVersion(e.ctx, epoch, defNS, "Bad Name", "", y1, nil)
	wantIs(t, err, store.ErrInvalidArgument)
}

func TestPutVersionConcurrent(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	same := make([]model.WorkflowVersion, n)
	createdCount := 0
	var mu sync.Mutex
	distinct := make([]int, n)
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			v, created, err := e.s.PutVersion(e.ctx, epoch, defNS, "same", "", "name: same\n", nil)
			if err != nil {
				errs <- err
				return
			}
			same[i] = v
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			v, _, err := e.s.PutVersion(e.ctx, epoch, defNS, "many", "", fmt.Sprintf("name: many\n# %d\n", i), nil)
			if err != nil {
				errs <- err
				return
			}
			distinct[i] = v.Version
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if createdCount != 1 {
		t.Fatalf("identical YAML created %d versions", createdCount)
	}
	for _, v := range same {
		if v.Version != 1 {
			t.Fatalf("identical YAML got version %d", v.Version)
		}
	}
	slices.Sort(distinct)
	for i, v := range distinct {
		if v != i+1 {
			t.Fatalf("distinct YAML versions %v, want 1..%d", distinct, n)
		}
	}
}

func TestCreateRunIdempotentUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	const n = 50
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, n)
	created := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, c, err := e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1,
				Trigger: model.TriggerManual, IdempotencyKey: "key-1"}, []string{"a", "b"})
			ids[i], created[i], errs[i] = r.ID, c, err
		}()
	}
	close(start)
	wg.Wait()
	nCreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("call %d returned run %s, call 0 %s", i, ids[i], ids[0])
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d calls report creating the run", nCreated)
	}
	if runs, tasks := count(e, `SELECT count(*) FROM runs`), count(e, `SELECT count(*) FROM task_runs`); runs != 1 || tasks != 2 {
		t.Fatalf("%d runs, %d task runs", runs, tasks)
	}
	// The same key on another workflow is another run; no key means always a new run.
	e.workflow("other")
	r, c, err := e.s.CreateRun(e.ctx, epoch, model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "other", Version: 1,
		Trigger: model.TriggerSchedule, IdempotencyKey: "key-1"}, []string{"a"})
	if err != nil || !c || r.ID == ids[0] || r.State != model.RunPending || r.Trigger != model.TriggerSchedule {
		t.Fatalf("same key, other workflow: %+v %v %v", r, c, err)
	}
	// Reusing a run id without a key is a conflict, not a silent success.
	_, _, err = e.s.CreateRun(e.ctx, epoch, model.Run{ID: r.ID, Namespace: defNS, Workflow: "other", Version: 1, Trigger: model.TriggerManual}, []string{"a"})
	wantIs(t, err, store.ErrConflict)
}

// Listing runs page by page visits each row once, in order, for every filter.
func TestListRunsPagination(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf-a")
	e.workflow("wf-b")
	var all []model.Run
	for i := range 57 {
		wf := []string{"wf-a", "wf-b"}[i%2]
		// Several runs per transaction share created_at: the id breaks ties.
		var b store.Batch
		var batch []uuid.UUID
		for range 3 {
			id := uuid.New()
			batch = append(batch, id)
			b.Add(store.InsertRun{Run: model.Run{ID: id, Namespace: defNS, Workflow: wf, Version: 1, Trigger: model.TriggerManual}, TaskIDs: []string{"t"}})
			if i%3 == 0 {
				b.Add(store.RunTransition{RunID: id, From: model.RunPending, To: model.RunRunning})
			}
		}
		if _, err := e.s.Apply(e.ctx, epoch, &b); err != nil {
			t.Fatal(err)
		}
		for _, id := range batch {
			d, _ := e.s.GetRun(e.ctx, defNS, id)
			all = append(all, d.Run)
		}
	}
	slices.SortFunc(all, func(a, b model.Run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return slices.Compare(b.ID[:], a.ID[:])
	})
	for _, f := range []store.RunFilter{{}, {Workflow: "wf-a"}, {State: model.RunRunning}, {Workflow: "wf-b", State: model.RunPending}, {Workflow: "none"}} {
		var want []uuid.UUID
		for _, r := range all {
			if (f.Workflow == "" || r.Workflow == f.Workflow) && (f.State == "" || r.State == f.State) {
				want = append(want, r.ID)
			}
		}
		var got []uuid.UUID
		token, pages := "", 0
		for {
			runs, next, err := e.s.ListRuns(e.ctx, defNS, f, store.PageRequest{Size: 10, Token: token})
			if err != nil {
				t.Fatalf("filter %+v page %d: %v", f, pages, err)
			}
			if len(runs) > 10 || (next != "" && len(runs) != 10) {
				t.Fatalf("filter %+v: page of %d with next=%q", f, len(runs), next)
			}
			for _, r := range runs {
				got = append(got, r.ID)
			}
			pages++
			if next == "" {
				break
			}
			token = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("filter %+v: walked %d runs in %d pages, want %d in order", f, len(got), pages, len(want))
		}
	}

	_, next, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{}, store.PageRequest{Size: 5})
	if err != nil || next == "" {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	raw[3] ^= 1
	for name, tok := range map[string]string{
		"edited byte": base64.RawURLEncoding.EncodeToString(raw),
		"truncated":   next[:len(next)-2],
		"not base64":  "!!!",
		"garbage":     base64.RawURLEncoding.EncodeToString([]byte("hello world, this is not a token")),
	} {
		_, _, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{}, store.PageRequest{Token: tok})
		if !errors.Is(err, store.ErrInvalidPageToken) {
			t.Errorf("%s token: %v", name, err)
		}
	}
	// A token is bound to its listing and filter.
	if _, _, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{Workflow: "wf-a"}, store.PageRequest{Token: next}); !errors.Is(err, store.ErrInvalidPageToken) {
		t.Errorf("token of another filter: %v", err)
	}
	if _, _, err := e.s.ListDeadLetters(e.ctx, defNS, store.DeadLetterFilter{}, store.PageRequest{Token: next}); !errors.Is(err, store.ErrInvalidPageToken) {
		t.Errorf("token of another listing: %v", err)
	}
	if _, _, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{}, store.PageRequest{Size: -1}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("negative size: %v", err)
	}
	if _, _, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{State: "BOGUS"}, store.PageRequest{}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("bad state filter: %v", err)
	}
	runs, _, err := e.s.ListRuns(e.ctx, defNS, store.RunFilter{}, store.PageRequest{})
	if err != nil || len(runs) != store.DefaultPageSize {
		t.Errorf("default page: %d %v", len(runs), err)
	}
}

func TestListWorkflowsAndVersionsPagination(t *testing.T) {
	e := newEnv(t)
	var names []string
	for i := range 23 {
		name := fmt.Sprintf("wf-%02d", i)
		names = append(names, name)
		e.workflow(name)
	}
	for i := 2; i <= 12; i++ {
		if _, _, err := e.s.PutVersion(e.ctx, epoch, defNS, "wf-00", "", fmt.Sprintf("name: wf-00\n# %d\n", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for token := ""; ; {
		ws, next, err := e.s.ListWorkflows(e.ctx, defNS, store.PageRequest{Size: 4, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			got = append(got, w.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	if !slices.Equal(got, names) {
		t.Fatalf("workflows %v", got)
	}
	var versions []int
	for token := ""; ; {
		vs, next, err := e.s.ListVersions(e.ctx, defNS, "wf-00", store.PageRequest{Size: 5, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			versions = append(versions, v.Version)
		}
		if next == "" {
			break
		}
		token = next
	}
	if !slices.Equal(versions, []int{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}) {
		t.Fatalf("versions %v", versions)
	}
}

func TestLoadActive(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	pending := e.run("wf", "x", "y")
	running := e.run("wf", "a", "b", "c")
	done := e.run("wf", "z")
	e.mustApply(store.RunTransition{RunID: running.ID, From: model.RunPending, To: model.RunRunning})
	e.toRunning(running.ID, "b", model.TaskPending, 0)
	e.mustApply(store.RunTransition{RunID: done.ID, From: model.RunPending, To: model.RunCancelled},
		store.TaskTransition{RunID: done.ID, TaskID: "z", From: model.TaskPending, To: model.TaskCancelled})

	active, err := e.s.LoadActive(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 2 || active[0].Run.ID != pending.ID || active[1].Run.ID != running.ID {
		t.Fatalf("active runs: %+v", active)
	}
	if len(active[0].Tasks) != 2 || len(active[1].Tasks) != 3 {
		t.Fatalf("task counts %d %d", len(active[0].Tasks), len(active[1].Tasks))
	}
	b := active[1].Tasks[1]
	if b.TaskID != "b" || b.State != model.TaskRunning || b.FencingToken == 0 || b.WorkerID != "w1" {
		t.Fatalf("running task: %+v", b)
	}
}

func TestDeadLettersAndConcurrentReplay(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf-a")
	e.workflow("wf-b")
	var letters []model.DeadLetter
	for i := range 12 {
		wf := []string{"wf-a", "wf-b"}[i%2]
		r := e.run(wf, "t")
		tok := e.toRunning(r.ID, "t", model.TaskPending, 0)
		d := model.DeadLetter{ID: uuid.New(), RunID: r.ID, TaskID: "t", Workflow: wf,
			Errors: []model.AttemptError{{Attempt: 1, FailureKind: model.FailureTimeout, Error: "timed out"}}}
		e.mustApply(
			store.FinishAttempt{Token: tok, To: model.AttemptFailed, FailureKind: model.FailureTimeout, Error: "timed out", Reported: true},
			store.TaskTransition{RunID: r.ID, TaskID: "t", From: model.TaskRunning, Attempt: 1, Token: tok, To: model.TaskDeadLettered},
			store.InsertDeadLetter{DeadLetter: d},
			store.RunTransition{RunID: r.ID, From: model.RunPending, To: model.RunFailed, Error: "task t dead-lettered"},
		)
		letters = append(letters, d)
	}
	// One open dead letter per task run.
	dup := letters[0]
	dup.ID = uuid.New()
	wantIs(t, e.apply(store.InsertDeadLetter{DeadLetter: dup}), store.ErrConflict)

	got, err := e.s.GetDeadLetter(e.ctx, defNS, letters[3].ID)
	if err != nil || got.Workflow != "wf-b" || len(got.Errors) != 1 || got.Errors[0].FailureKind != model.FailureTimeout || !got.ReplayedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := e.s.GetDeadLetter(e.ctx, defNS, uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	walk := func(f store.DeadLetterFilter) []uuid.UUID {
		var ids []uuid.UUID
		for token := ""; ; {
			ds, next, err := e.s.ListDeadLetters(e.ctx, defNS, f, store.PageRequest{Size: 4, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			if next == "" {
				return ids
			}
			token = next
		}
	}
	if ids := walk(store.DeadLetterFilter{Workflow: "wf-a"}); len(ids) != 6 || ids[0] != letters[10].ID || ids[5] != letters[0].ID {
		t.Fatalf("wf-a dead letters: %v", ids)
	}

	// Ten concurrent replays of one dead letter: exactly one applies.
	target := letters[4]
	var wg sync.WaitGroup
	results := make([]error, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b store.Batch
			b.Add(
				store.MarkReplayed{ID: target.ID},
				store.TaskTransition{RunID: target.RunID, TaskID: "t", From: model.TaskDeadLettered, Attempt: 1, To: model.TaskQueued},
				store.RunTransition{RunID: target.RunID, From: model.RunFailed, To: model.RunRunning},
				store.AppendEvent{Event: model.Event{RunID: target.RunID, TaskID: "t", Kind: model.EventReplayed}},
			)
			res, err := e.s.Apply(e.ctx, epoch, &b)
			if err == nil {
				err = res[0]
			}
			results[i] = err
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("replay: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d replays applied", wins)
	}
	if n := count(e, `SELECT count(*) FROM events WHERE kind = 'replayed'`); n != 1 {
		t.Fatalf("%d replay events", n)
	}
	if d, _ := e.s.GetRun(e.ctx, defNS, target.RunID); d.Run.State != model.RunRunning || d.Tasks[0].State != model.TaskQueued || d.Run.Error != "" {
		t.Fatalf("replayed run: %+v", d)
	}
	err = e.apply(store.MarkReplayed{ID: target.ID})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || len(ce.Actual) < 11 || ce.Actual[:11] != "replayed at" {
		t.Fatalf("second replay: %v", err)
	}
	if ids := walk(store.DeadLetterFilter{Open: true}); len(ids) != 11 || slices.Contains(ids, target.ID) {
		t.Fatalf("open dead letters: %d", len(ids))
	}
	// After the replay, a new dead letter may be opened for the same task run.
	again := model.DeadLetter{ID: uuid.New(), RunID: target.RunID, TaskID: "t", Workflow: target.Workflow}
	if err := e.apply(store.InsertDeadLetter{DeadLetter: again}); err != nil {
		t.Fatal(err)
	}
}

func TestEventsAppendOnlyAndPurge(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	old := e.run("wf", "a")
	keptDLQ := e.run("wf", "a")
	active := e.run("wf", "a")
	for i := range 5 {
		e.mustApply(store.AppendEvent{Event: model.Event{RunID: old.ID, Kind: model.EventNote, Message: fmt.Sprint(i)}})
	}
	e.mustApply(store.AppendEvent{Event: model.Event{RunID: active.ID, Kind: model.EventNote, Message: "x"}})

	evs, err := e.s.EventsSince(e.ctx, defNS, old.ID, 0, 0)
	if err != nil || len(evs) != 5 {
		t.Fatalf("events: %v %v", evs, err)
	}
	tail, err := e.s.EventsSince(e.ctx, defNS, old.ID, evs[2].Seq, 10)
	if err != nil || len(tail) != 2 || tail[0].Message != "3" || tail[1].Seq <= tail[0].Seq {
		t.Fatalf("events since: %+v %v", tail, err)
	}
	if _, err := e.pool.Exec(e.ctx, `UPDATE events SET message = 'rewritten'`); err == nil {
		t.Fatal("UPDATE of events accepted")
	}
	if _, err := e.pool.Exec(e.ctx, `DELETE FROM events WHERE run_id = $1`, old.ID); err == nil {
		t.Fatal("DELETE of events of a live run accepted")
	}

	e.mustApply(store.RunTransition{RunID: old.ID, From: model.RunPending, To: model.RunCancelled})
	tok := e.toRunning(keptDLQ.ID, "a", model.TaskPending, 0)
	e.mustApply(
		store.FinishAttempt{Token: tok, To: model.AttemptFailed, FailureKind: model.FailureInternal},
		store.TaskTransition{RunID: keptDLQ.ID, TaskID: "a", From: model.TaskRunning, Attempt: 1, To: model.TaskDeadLettered},
		store.InsertDeadLetter{DeadLetter: model.DeadLetter{ID: uuid.New(), RunID: keptDLQ.ID, TaskID: "a", Workflow: "wf"}},
		store.RunTransition{RunID: keptDLQ.ID, From: model.RunPending, To: model.RunFailed},
	)
	// Nothing finished before an hour ago.
	if n, err := e.s.Purge(e.ctx, epoch, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("purge of nothing: %d %v", n, err)
	}
	n, err := e.s.Purge(e.ctx, epoch, time.Now().Add(time.Hour), 100)
	if err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := e.s.GetRun(e.ctx, defNS, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("purged run still there: %v", err)
	}
	if c := count(e, `SELECT count(*) FROM events WHERE run_id = $1`, old.ID); c != 0 {
		t.Fatalf("%d events of the purged run left", c)
	}
	for _, id := range []uuid.UUID{keptDLQ.ID, active.ID} {
		if _, err := e.s.GetRun(e.ctx, defNS, id); err != nil {
			t.Fatalf("run %s purged: %v", id, err)
		}
	}
	if c := count(e, `SELECT count(*) FROM events WHERE run_id = $1`, active.ID); c != 1 {
		t.Fatalf("events of a kept run: %d", c)
	}
	if _, err := e.s.Purge(e.ctx, epoch, time.Now(), 0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("purge limit 0: %v", err)
	}
}

func TestSchedules(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	e.workflow("later")
	t0 := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	e.mustApply(store.PutSchedule{Schedule: model.Schedule{Namespace: defNS, Workflow: "wf", Cron: "0 2 * * *", NextFireAt: t0}},
		store.PutSchedule{Schedule: model.Schedule{Namespace: defNS, Workflow: "later", Cron: "0 3 * * *", Timezone: "Europe/Paris", NextFireAt: t0.Add(time.Hour)}})
	due, err := e.s.DueSchedules(e.ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].Workflow != "wf" || due[0].Timezone != "UTC" || !due[0].LastFireAt.IsZero() {
		t.Fatalf("due: %+v %v", due, err)
	}
	// Two leaders' worth of firing attempts on one fire time: exactly one advances it.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b store.Batch
			b.Add(
				store.AdvanceSchedule{Namespace: defNS, Workflow: "wf", ExpectedNext: t0, Next: t0.Add(24 * time.Hour), FiredAt: t0},
				store.InsertRun{Run: model.Run{ID: uuid.New(), Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerSchedule,
					IdempotencyKey: "schedule:" + t0.Format(time.RFC3339)}, TaskIDs: []string{"a"}},
			)
			res, err := e.s.Apply(e.ctx, epoch, &b)
			if err == nil {
				err = res[0]
			}
			results[i] = err
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	if wins != 1 || count(e, `SELECT count(*) FROM runs WHERE trigger = 'schedule'`) != 1 {
		t.Fatalf("%d fires applied", wins)
	}
	s, err := e.s.GetSchedule(e.ctx, defNS, "wf")
	if err != nil || !s.NextFireAt.Equal(t0.Add(24*time.Hour)) || !s.LastFireAt.Equal(t0) {
		t.Fatalf("advanced schedule: %+v %v", s, err)
	}
	if due, _ := e.s.DueSchedules(e.ctx, t0.Add(time.Hour), 10); len(due) != 1 || due[0].Workflow != "later" {
		t.Fatalf("due later: %+v", due)
	}
	e.mustApply(store.DeleteSchedule{Namespace: defNS, Workflow: "later"}, store.DeleteSchedule{Namespace: defNS, Workflow: "never-existed"})
	if _, err := e.s.GetSchedule(e.ctx, defNS, "later"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted schedule: %v", err)
	}
}
