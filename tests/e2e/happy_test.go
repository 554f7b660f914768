package e2e

import (
	"testing"
	"time"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// fanOut is a fan-out/fan-in DAG: a noop root, six shell tasks in parallel, a join.
const fanOut = `
name: fan-out
tasks:
  - id: root
    type: noop
  - {id: a, type: shell, command: "sleep 0.5", depends_on: [root]}
  - {id: b, type: shell, command: "sleep 0.5", depends_on: [root]}
  - {id: c, type: shell, command: "sleep 0.5", depends_on: [root]}
  - {id: d, type: shell, command: "sleep 0.5", depends_on: [root]}
  - {id: e, type: shell, command: "echo e", depends_on: [root]}
  - {id: f, type: noop, depends_on: [root]}
  - id: join
    type: shell
    command: 'test -n "$CAIRN_RUN_ID" && test "$CAIRN_TASK_ID" = join && test "$CAIRN_ATTEMPT" = 1'
    depends_on: [a, b, c, d, e, f]
`

func TestHappyPathFanOut(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Schedulers: 3, Workers: 2, WorkerConcurrency: 2})
	name, _ := c.Apply(fanOut)
	ids := []string{c.StartRun(name, nil), c.StartRun(name, nil)}
	for _, id := range ids {
		if got := c.WaitRun(id, 30*time.Second); got != "SUCCEEDED" {
			t.Fatalf("run %s finished %s, want SUCCEEDED", id, got)
		}
		for task, tr := range c.Tasks(id) {
			if tr.State != "SUCCEEDED" || tr.Attempt != 1 {
				t.Errorf("run %s task %s: %s at attempt %d, want SUCCEEDED at attempt 1", id, task, tr.State, tr.Attempt)
			}
		}
	}
	// Least-loaded routing of 12 parallel shell tasks over two 2-slot workers uses both.
	used := map[string]bool{}
	for _, a := range c.Attempts("") {
		used[a.WorkerID] = true
	}
	for _, w := range c.Workers {
		if !used[w.ID] {
			t.Errorf("worker %s ran no attempt; attempts went to %v", w.ID, used)
		}
	}
	c.CheckInvariants(t)
}
