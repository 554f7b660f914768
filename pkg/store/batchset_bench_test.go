package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// BenchmarkApplyTaskCycles applies batches shaped like the leader's under load: per task,
// one group finishing its attempt (FinishAttempt, task → SUCCEEDED, event) and one group
// assigning the next task (task → ASSIGNED, InsertAttempt, event), in a run of 10,000 tasks.
// "set" is Apply; "per-op" applies the same ops one statement each (single-op groups, no
// savepoints), as Apply did before it became set-based. Reports µs per task cycle.
func BenchmarkApplyTaskCycles(b *testing.B) {
	for _, mode := range []string{"set", "per-op"} {
		for _, n := range []int{8, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, n), func(b *testing.B) {
				e := newEnv(b)
				e.workflow("wf")
				ids := make([]string, 10000)
				for i := range ids {
					ids[i] = fmt.Sprintf("t%05d", i)
				}
				r := e.run("wf", ids...)
				var q store.Batch
				for _, id := range ids {
					q.Add(store.TaskTransition{RunID: r.ID, TaskID: id, From: model.TaskPending, To: model.TaskQueued})
				}
				if _, err := e.s.Apply(e.ctx, epoch, &q); err != nil {
					b.Fatal(err)
				}
				next, token := 0, int64(epoch)<<32
				var running []int
				assign := func(bt *store.Batch, split bool) {
					i := next
					next++
					token++
					ops := []store.Op{
						store.TaskTransition{RunID: r.ID, TaskID: ids[i], From: model.TaskQueued, To: model.TaskAssigned,
							Assign: &store.Assignment{Token: token, WorkerID: "w1"}},
						store.InsertAttempt{ID: uuid.New(), RunID: r.ID, TaskID: ids[i], Number: 1, Token: token, WorkerID: "w1"},
						store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: ids[i], Kind: model.EventTaskState, From: "QUEUED", To: "ASSIGNED", Attempt: 1}},
					}
					add(bt, split, ops)
					running = append(running, i)
				}
				finish := func(bt *store.Batch, split bool, i int) {
					tok := int64(epoch)<<32 + int64(i) + 1
					ops := []store.Op{
						store.FinishAttempt{RunID: r.ID, TaskID: ids[i], Token: tok, To: model.AttemptSucceeded, Reported: true},
						store.TaskTransition{RunID: r.ID, TaskID: ids[i], From: model.TaskAssigned, Attempt: 1, Token: tok, To: model.TaskSucceeded},
						store.AppendEvent{Event: model.Event{RunID: r.ID, TaskID: ids[i], Kind: model.EventTaskState, From: "ASSIGNED", To: "SUCCEEDED", Attempt: 1}},
					}
					add(bt, split, ops)
				}
				var first store.Batch
				for range n {
					assign(&first, false)
				}
				if _, err := e.s.Apply(e.ctx, epoch, &first); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				cycles := 0
				start := time.Now()
				for b.Loop() {
					if next+n > len(ids) {
						b.StopTimer()
						b.Fatalf("-benchtime too long: the run of %d tasks ran out after %d batches of %d (use at most %dx)", len(ids), cycles/n, n, len(ids)/n-1)
					}
					var bt store.Batch
					done := running
					running = nil
					for _, i := range done {
						finish(&bt, mode == "per-op", i)
						assign(&bt, mode == "per-op")
					}
					var err error
					if mode == "set" {
						_, err = e.s.Apply(e.ctx, epoch, &bt)
					} else {
						_, err = e.s.ApplySequential(e.ctx, epoch, &bt)
					}
					if err != nil {
						b.Fatal(err)
					}
					cycles += len(done)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/float64(cycles), "µs/task")
			})
		}
	}
}

func add(b *store.Batch, split bool, ops []store.Op) {
	if !split {
		b.Add(ops...)
		return
	}
	for _, op := range ops {
		b.Add(op)
	}
}

// BenchmarkInsertRuns applies batches of run starts shaped like the leader's: per run, one
// group inserting it with its 10 task runs, moving it to RUNNING and appending the event.
// Reports µs per run.
func BenchmarkInsertRuns(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			e := newEnv(b)
			e.workflow("wf")
			tasks := make([]string, 10)
			for i := range tasks {
				tasks[i] = fmt.Sprintf("t%d", i)
			}
			runs := 0
			start := time.Now()
			for b.Loop() {
				var bt store.Batch
				for range n {
					id := uuid.New()
					bt.Add(store.InsertRun{Run: model.Run{ID: id, Namespace: defNS, Workflow: "wf", Version: 1, Trigger: model.TriggerManual,
						IdempotencyKey: id.String()}, TaskIDs: tasks},
						store.RunTransition{RunID: id, From: model.RunPending, To: model.RunRunning},
						store.AppendEvent{Event: model.Event{RunID: id, Kind: model.EventRunState, From: "PENDING", To: "RUNNING"}})
				}
				if _, err := e.s.Apply(e.ctx, epoch, &bt); err != nil {
					b.Fatal(err)
				}
				runs += n
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(runs), "µs/run")
		})
	}
}
