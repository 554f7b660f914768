package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// partitioned keeps results flowing: eight tasks of 1.5 s on two workers of two slots, then a
// join, so results reach the leader while it is being cut off, and decisions remain after.
var partitioned = func() string {
	var b strings.Builder
	b.WriteString("name: partitioned\ntasks:\n")
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("t%d", i)
		ids = append(ids, id)
		fmt.Fprintf(&b, "  - {id: %s, type: shell, command: \"sleep 1.5\"}\n", id)
	}
	fmt.Fprintf(&b, "  - {id: join, type: noop, depends_on: [%s]}\n", strings.Join(ids, ", "))
	return b.String()
}()

// TestFailureLeaderPartitionedFromEtcd: the leader loses etcd (a blackholed link, not a crash)
// while it keeps PostgreSQL and its workers' streams — the split-brain case. A follower takes
// office within the session TTL + 3 s; the old leader issued no attempt once the new epoch
// was in office; every task succeeds exactly once; the old leader stays up and, once the link
// heals, campaigns again and leads when the new leader resigns.
//
// It does not prove the epoch check in PostgreSQL on its own: the old leader's etcd client sees
// the session expire about when the server does, leader work stops with it, and its workers
// move to the new leader as soon as etcd names it — with the epoch check and the session watch
// both disabled, it still wrote nothing after the new epoch began (tried). The epoch check is
// proven by pkg/store's fencing tests and by TestFailureLeaderPaused (a leader frozen past its
// TTL, which cannot notice).
func TestFailureLeaderPartitionedFromEtcd(t *testing.T) {
	const sessionTTL = 2 * time.Second
	c := framework.NewCluster(t, framework.Options{Schedulers: 2, Workers: 2, WorkerConcurrency: 2,
		SessionTTL: sessionTTL, EtcdProxies: true})
	name, _ := c.Apply(partitioned)
	run := c.StartRun(name, nil)
	c.WaitAttemptRunning(run, "t0", 20*time.Second)
	old := c.WaitLeader(10 * time.Second)

	c.EtcdProxy(old.Process).Cut()
	var next framework.Leader
	framework.Eventually(t, sessionTTL+3*time.Second, func() bool {
		l, ok := c.LeaderNow()
		if ok && l.Epoch > old.Epoch && l.Process != nil && l.Process != old.Process {
			next = l
			return true
		}
		return false
	}, "the follower leads within session TTL %v + 3s of the leader's partition", sessionTTL)
	framework.Eventually(t, 10*time.Second, func() bool { return c.StoredEpoch() == next.Epoch },
		"new leader %s takes office in PostgreSQL at epoch %d", next.Process.Name, next.Epoch)

	if st := c.WaitRun(run, 60*time.Second); st != "SUCCEEDED" {
		t.Fatalf("run %s ended %s, want SUCCEEDED", run, st)
	}
	if !old.Process.Running() {
		t.Fatalf("the partitioned leader exited:\n%s", old.Process.LogTail(30))
	}

	// Fencing: the old leader issued no attempt once the new epoch was in office.
	var since time.Time
	if err := c.Pool.QueryRow(context.Background(), `SELECT since FROM leadership`).Scan(&since); err != nil {
		t.Fatal(err)
	}
	byTask := map[string]int{}
	for _, a := range c.Attempts(run) {
		if a.Epoch() == old.Epoch && !a.AssignedAt.Before(since) {
			t.Errorf("attempt %v was issued under the old epoch %d at %v, after epoch %d took office at %v",
				a, old.Epoch, a.AssignedAt, next.Epoch, since)
		}
		if a.State == "SUCCEEDED" {
			byTask[a.TaskID]++
		}
	}
	for task, n := range byTask {
		if n != 1 {
			t.Errorf("task %s has %d succeeded attempts, want 1", task, n)
		}
	}
	if len(byTask) != 9 {
		t.Errorf("%d tasks succeeded, want 9: %v", len(byTask), byTask)
	}

	// The link heals: the old leader, still running, campaigns again as a follower — it takes
	// over when the leader resigns.
	c.EtcdProxy(old.Process).Heal()
	time.Sleep(2 * sessionTTL) // its client reconnects and it rejoins the election
	if !old.Process.Running() {
		t.Fatalf("the old leader exited after the heal:\n%s", old.Process.LogTail(30))
	}
	next.Process.Term()
	framework.Eventually(t, 15*time.Second, func() bool {
		l, ok := c.LeaderNow()
		return ok && l.Process == old.Process && l.Epoch > next.Epoch && c.StoredEpoch() == l.Epoch
	}, "the healed scheduler %s leads again once %s resigns", old.Process.Name, next.Process.Name)
	second := c.StartRun(name, nil)
	if st := c.WaitRun(second, 60*time.Second); st != "SUCCEEDED" {
		t.Fatalf("run %s after the heal ended %s, want SUCCEEDED", second, st)
	}
	c.CheckInvariants(t)
}
