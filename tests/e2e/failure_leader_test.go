package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// failover has a long task that is running on a live worker while the leader dies, tasks
// that can only be dispatched after it (so the new leader must dispatch), and an
// independent short task.
const failover = `
name: failover
tasks:
  - {id: long, type: shell, command: "sleep 5"}
  - {id: after1, type: shell, command: "sleep 0.3", depends_on: [long]}
  - {id: after2, type: shell, command: "sleep 0.3", depends_on: [long]}
  - {id: join, type: noop, depends_on: [after1, after2]}
`

// TestFailureLeaderKilled: SIGKILL the leader of three schedulers while attempts run. A
// follower leads within the session TTL + 3s, the running attempts are re-adopted (no new
// attempt for a task that was running on a live worker), the new leader dispatches, and
// every run completes — including one started through the gateway after the failover.
func TestFailureLeaderKilled(t *testing.T) {
	const sessionTTL = 2 * time.Second
	c := framework.NewCluster(t, framework.Options{Schedulers: 3, Workers: 2, WorkerConcurrency: 2,
		SessionTTL: sessionTTL, Gateway: true})
	name, _ := c.Apply(failover)
	runs := []string{c.StartRun(name, nil), c.StartRun(name, nil)}
	for _, r := range runs {
		c.WaitAttemptRunning(r, "long", 20*time.Second)
	}
	old := c.WaitLeader(10 * time.Second)

	killed := time.Now()
	old.Process.Kill()

	var next framework.Leader
	framework.Eventually(t, sessionTTL+3*time.Second, func() bool {
		l, ok := c.LeaderNow()
		if ok && l.Epoch > old.Epoch && l.Process != nil {
			next = l
			return true
		}
		return false
	}, "a follower leads within session TTL %v + 3s after the leader's kill", sessionTTL)
	elected := time.Since(killed)
	framework.Eventually(t, 10*time.Second, func() bool { return c.StoredEpoch() == next.Epoch },
		"new leader %s takes office in PostgreSQL at epoch %d", next.Process.Name, next.Epoch)
	inOffice := time.Since(killed)

	var firstDispatch time.Time
	framework.Eventually(t, 20*time.Second, func() bool {
		for _, a := range c.Attempts("") {
			if a.Epoch() == next.Epoch && (firstDispatch.IsZero() || a.AssignedAt.Before(firstDispatch)) {
				firstDispatch = a.AssignedAt
			}
		}
		return !firstDispatch.IsZero()
	}, "the new leader dispatches an attempt")
	t.Logf("failover: kill → %s elected %v, in office %v, first dispatch %v (session TTL %v)",
		next.Process.Name, elected.Round(time.Millisecond), inOffice.Round(time.Millisecond),
		firstDispatch.Sub(killed).Round(time.Millisecond), sessionTTL)

	runs = append(runs, c.StartRun(name, nil)) // through the gateway, to the new leader
	for _, r := range runs {
		if got := c.WaitRun(r, 30*time.Second); got != "SUCCEEDED" {
			t.Fatalf("run %s finished %s, want SUCCEEDED", r, got)
		}
	}
	for _, r := range runs[:2] {
		as := c.TaskAttempts(r, "long")
		if len(as) != 1 || as[0].State != "SUCCEEDED" || as[0].Epoch() != old.Epoch {
			t.Errorf("run %s task long: attempts %v; want its one attempt from epoch %d re-adopted and SUCCEEDED", r, as, old.Epoch)
		}
	}
	c.CheckInvariants(t)
}

// chain is a sequence of short tasks, so that dispatches keep happening while the leader
// is paused.
const chain = `
name: chain
tasks:
  - {id: t1, type: shell, command: "sleep 0.5"}
  - {id: t2, type: shell, command: "sleep 0.5", depends_on: [t1]}
  - {id: t3, type: shell, command: "sleep 0.5", depends_on: [t2]}
  - {id: t4, type: shell, command: "sleep 0.5", depends_on: [t3]}
  - {id: t5, type: shell, command: "sleep 0.5", depends_on: [t4]}
  - {id: t6, type: shell, command: "sleep 0.5", depends_on: [t5]}
`

// TestFailureLeaderPaused: SIGSTOP the leader past its session TTL, let a follower take
// office, then SIGCONT the old leader. The deposed leader writes nothing under its old
// epoch after the new epoch was stored (leader fencing), keeps running as a follower, and
// the run completes.
func TestFailureLeaderPaused(t *testing.T) {
	const sessionTTL = 2 * time.Second
	c := framework.NewCluster(t, framework.Options{Schedulers: 2, Workers: 2, WorkerConcurrency: 1, SessionTTL: sessionTTL})
	name, _ := c.Apply(chain)
	run := c.StartRun(name, nil)
	c.WaitAttemptRunning(run, "t1", 20*time.Second)
	old := c.WaitLeader(10 * time.Second)

	old.Process.Stop()
	paused := time.Now()
	var next framework.Leader
	framework.Eventually(t, sessionTTL+10*time.Second, func() bool {
		l, ok := c.LeaderNow()
		if !ok || l.Epoch <= old.Epoch || l.Process == nil || c.StoredEpoch() != l.Epoch {
			return false
		}
		next = l
		return true
	}, "another scheduler takes office with an epoch above %d while %s is paused", old.Epoch, old.Process.Name)
	t.Logf("pause → %s in office at epoch %d after %v", next.Process.Name, next.Epoch, time.Since(paused).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	took, err := c.Store.GetLeadership(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	old.Process.Cont()

	if got := c.WaitRun(run, 30*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run finished %s, want SUCCEEDED", got)
	}
	if !old.Process.Running() {
		t.Errorf("the deposed leader %s exited after SIGCONT; it should step down and stand by", old.Process.Name)
	}
	if l, ok := c.LeaderNow(); !ok || l.Epoch != next.Epoch {
		t.Errorf("leader after the old one resumed: %+v (ok=%v), want epoch %d to keep office", l, ok, next.Epoch)
	}
	for _, a := range c.Attempts("") {
		if a.Epoch() == old.Epoch && a.AssignedAt.After(took.Since) {
			t.Errorf("attempt %v was assigned under the old epoch %d at %v, after epoch %d took office at %v",
				a, old.Epoch, a.AssignedAt, next.Epoch, took.Since)
		}
	}
	c.CheckInvariants(t)
}

// TestFailureAllSchedulersRestarted: kill every scheduler while workers run attempts, then
// start them again. The workers keep running; the new leader re-adopts their attempts (no
// task gets a second attempt) and every run completes.
func TestFailureAllSchedulersRestarted(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Schedulers: 2, Workers: 2, WorkerConcurrency: 2})
	name, _ := c.Apply(failover)
	runs := []string{c.StartRun(name, nil), c.StartRun(name, nil)}
	for _, r := range runs {
		c.WaitAttemptRunning(r, "long", 20*time.Second)
	}
	old := c.WaitLeader(10 * time.Second)
	for _, s := range c.Schedulers {
		s.Kill()
	}
	for _, s := range c.Schedulers {
		s.Restart()
	}
	// The dead leader's key lingers until its session TTL runs out; then a restarted one leads.
	framework.Eventually(t, 15*time.Second, func() bool {
		l, ok := c.LeaderNow()
		return ok && l.Epoch > old.Epoch && l.Process != nil
	}, "a restarted scheduler leads at an epoch above %d", old.Epoch)
	for _, r := range runs {
		if got := c.WaitRun(r, 30*time.Second); got != "SUCCEEDED" {
			t.Fatalf("run %s finished %s, want SUCCEEDED", r, got)
		}
		as := c.TaskAttempts(r, "long")
		if len(as) != 1 || as[0].State != "SUCCEEDED" || as[0].Epoch() != old.Epoch {
			t.Errorf("run %s task long: attempts %v; want its one attempt from epoch %d re-adopted, not relaunched", r, as, old.Epoch)
		}
	}
	c.CheckInvariants(t)
}
