package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// oneSlow is a single shell task long enough for a fault to land mid-task.
const oneSlow = `
name: one-slow
tasks:
  - {id: slow, type: shell, command: "sleep 2"}
`

// TestFailureWorkerKilled: SIGKILL the worker running an attempt. Its lease expires, the
// leader marks the attempt LOST and re-queues the task on the other worker, where it
// succeeds; the task is recorded SUCCEEDED exactly once.
func TestFailureWorkerKilled(t *testing.T) {
	const ttl = 2 * time.Second
	c := framework.NewCluster(t, framework.Options{Schedulers: 1, Workers: 2, WorkerConcurrency: 1, LeaseTTL: ttl})
	name, _ := c.Apply(oneSlow)
	run := c.StartRun(name, nil)
	first := c.WaitAttemptRunning(run, "slow", 20*time.Second)
	victim := c.Worker(first.WorkerID)

	killed := time.Now()
	victim.Kill()

	// Recovery = kill → the task's next attempt is assigned to the surviving worker.
	var second framework.Attempt
	framework.Eventually(t, ttl+2*time.Second, func() bool {
		as := c.TaskAttempts(run, "slow")
		if len(as) < 2 {
			return false
		}
		second = as[len(as)-1]
		return true
	}, "task re-assigned within lease TTL %v + 2s of the kill", ttl)
	t.Logf("recovery: kill → new attempt assigned in %v (lease TTL %v)", second.AssignedAt.Sub(killed).Round(time.Millisecond), ttl)

	if got := c.WaitRun(run, 20*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run finished %s, want SUCCEEDED", got)
	}
	t.Logf("kill → run SUCCEEDED in %v", time.Since(killed).Round(time.Millisecond))
	as := c.TaskAttempts(run, "slow")
	if len(as) != 2 {
		t.Fatalf("want 2 attempts (lost, succeeded), got %d: %v", len(as), as)
	}
	if as[0].State != "LOST" || as[0].WorkerID != victim.ID {
		t.Errorf("first attempt: %v, want LOST on %s", as[0], victim.ID)
	}
	if as[1].State != "SUCCEEDED" || as[1].WorkerID == victim.ID {
		t.Errorf("second attempt: %v, want SUCCEEDED on the surviving worker", as[1])
	}
	c.CheckInvariants(t)
}

// TestFailureWorkerPausedResultStale: SIGSTOP the worker running an attempt past its lease
// TTL. The attempt is lost and the task runs again elsewhere; meanwhile the paused worker's
// shell task finishes. After SIGCONT the worker reports that result: it is recorded as stale
// on the lost attempt and never applied.
func TestFailureWorkerPausedResultStale(t *testing.T) {
	const ttl = 2 * time.Second
	c := framework.NewCluster(t, framework.Options{Schedulers: 1, Workers: 2, WorkerConcurrency: 1, LeaseTTL: ttl})
	name, _ := c.Apply(oneSlow)
	run := c.StartRun(name, nil)
	first := c.WaitAttemptRunning(run, "slow", 20*time.Second)
	zombie := c.Worker(first.WorkerID)

	zombie.Stop()
	paused := time.Now()
	framework.Eventually(t, ttl+5*time.Second, func() bool {
		as := c.TaskAttempts(run, "slow")
		return len(as) >= 2 && as[0].State == "LOST"
	}, "the paused worker's attempt LOST and the task re-assigned")
	t.Logf("pause → attempt lost and re-assigned in %v", time.Since(paused).Round(time.Millisecond))
	// The paused worker's `sleep 2` (its own process group, not stopped) has exited by now
	// or soon will; give it until its natural end before resuming the worker, so that the
	// worker has a finished result to report.
	framework.Eventually(t, 5*time.Second, func() bool { return time.Since(*first.StartedAt) > 2500*time.Millisecond },
		"the zombie's shell task has had time to finish")
	zombie.Cont()

	if got := c.WaitRun(run, 20*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run finished %s, want SUCCEEDED", got)
	}
	var lost framework.Attempt
	framework.Eventually(t, 15*time.Second, func() bool {
		lost = c.TaskAttempts(run, "slow")[0]
		return lost.StaleResultAt != nil
	}, "the resumed worker's late result recorded as stale on attempt 1")
	t.Logf("stale result recorded: %v", lost)
	if lost.State != "LOST" {
		t.Errorf("attempt 1 is %s after its stale result, want it to stay LOST", lost.State)
	}
	// The outcome is the worker's: SUCCEEDED if it reaped the finished shell task first,
	// CANCELLED if it first noticed its lost lease. Either way it is recorded, not applied.
	if !strings.HasPrefix(lost.StaleOutcome, "SUCCEEDED") && !strings.HasPrefix(lost.StaleOutcome, "CANCELLED") {
		t.Errorf("stale outcome %q, want the worker's SUCCEEDED or CANCELLED result", lost.StaleOutcome)
	}
	as := c.TaskAttempts(run, "slow")
	last := as[len(as)-1]
	if tr := c.Tasks(run)["slow"]; tr.Token != last.Token || last.State != "SUCCEEDED" || last.WorkerID == zombie.ID {
		t.Errorf("task %+v, last attempt %v: want the task's result from the other worker's attempt", tr, last)
	}
	c.CheckInvariants(t)
}

// TestFailureWorkerDrain: SIGTERM a worker with a running attempt. It finishes the attempt,
// has the result acknowledged, removes its etcd registration and exits 0.
func TestFailureWorkerDrain(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Schedulers: 1, Workers: 2, WorkerConcurrency: 1})
	name, _ := c.Apply(oneSlow)
	run := c.StartRun(name, nil)
	first := c.WaitAttemptRunning(run, "slow", 20*time.Second)
	w := c.Worker(first.WorkerID)

	termed := time.Now()
	w.Term()
	code, err := w.Wait(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM → exit %d in %v", code, time.Since(termed).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("drained worker exited %d, want 0", code)
	}
	as := c.TaskAttempts(run, "slow")
	if len(as) != 1 || as[0].State != "SUCCEEDED" || as[0].WorkerID != w.ID {
		t.Errorf("attempts after drain: %v; want the one attempt SUCCEEDED on %s", as, w.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.EtcdClient.Get(ctx, membership.WorkersPrefix(framework.Prefix)+w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("worker %s exited but its etcd key is still there: %s", w.ID, resp.Kvs[0].Value)
	}
	if got := c.WaitRun(run, 10*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run finished %s, want SUCCEEDED", got)
	}
	c.CheckInvariants(t)
}
