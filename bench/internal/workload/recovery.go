package workload

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
)

// recovery measures, on a cluster of two schedulers and two workers:
//   - leader kill -9 → the new leader in office, and its first dispatch;
//   - leader SIGTERM → the same (a planned hand-over);
//   - worker kill -9 → its running task started again on the other worker.
//
// Each measurement runs its own run, which must succeed.
func (r *runner) recovery(ctx context.Context) error {
	chain := 500
	if r.hopMean > 0 { // long enough to still be dispatching ~2s after the first task
		chain = int(2*time.Second/r.hopMean) + 20
	}
	chain = max(50, min(chain, 5000))
	r.rep.Workload("recovery", "schedulers", 2, "workers", 2, "slots", r.cfg.Slots, "session_ttl", r.cfg.SessionTTL,
		"lease_ttl", r.cfg.LeaseTTL, "adopt_grace", r.cfg.AdoptGrace, "leader_runs", fmt.Sprintf("chain of %d noop", chain),
		"worker_run", "one shell task sleep 2, retries 3")
	c, err := r.env.NewCluster(ctx, "recovery", cluster.Spec{Schedulers: 2, Workers: 2, Slots: r.cfg.Slots,
		SessionTTL: r.cfg.SessionTTL, LeaseTTL: r.cfg.LeaseTTL, AdoptGrace: r.cfg.AdoptGrace})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := apply(ctx, c, chainYAML("rchain", chain)); err != nil {
		return err
	}
	if err := apply(ctx, c, "name: rsleep\ntasks:\n  - id: sleep\n    type: shell\n    command: [sleep, \"2\"]\n    retries: 3\n    backoff: {initial: 100ms, max: 1s}\n"); err != nil {
		return err
	}
	var ids []string
	var errs []error
	for _, m := range []struct {
		name string
		sig  syscall.Signal
	}{{"leader_kill", syscall.SIGKILL}, {"leader_term", syscall.SIGTERM}} {
		id, err := r.leaderFailover(ctx, c, m.name, m.sig)
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
			r.rep.Unavailable("recovery."+m.name+".office", err.Error())
			r.rep.Unavailable("recovery."+m.name+".dispatch", "")
		}
	}
	id, err := r.workerKill(ctx, c)
	if id != "" {
		ids = append(ids, id)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("worker_kill: %w", err))
		r.rep.Unavailable("recovery.worker_kill.lost", err.Error())
		r.rep.Unavailable("recovery.worker_kill.restart", "")
	}
	out, err := waitRuns(ctx, c, ids, r.cfg.Timeout)
	if err != nil {
		return err
	}
	why := out.String()
	if len(errs) > 0 {
		why += fmt.Sprintf("; %v", errors.Join(errs...))
	}
	r.errorsFigure("recovery.errors", len(errs)+len(ids)-out.count("SUCCEEDED"), why)
	return nil
}

// leaderFailover starts a chain run, signals the leader once the first task succeeded, and
// reports the time to the successor's leadership.since and to its first assignment.
func (r *runner) leaderFailover(ctx context.Context, c *cluster.Cluster, name string, sig syscall.Signal) (string, error) {
	leader, epoch, err := c.WaitLeader(ctx, time.Minute, 0)
	if err != nil {
		return "", err
	}
	id, err := startRun(ctx, c, "rchain")
	if err != nil {
		return "", err
	}
	if err := cluster.Poll(ctx, r.cfg.Timeout, func() (bool, error) {
		var n int
		err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE run_id = $1 AND state = 'SUCCEEDED'`, id).Scan(&n)
		return n > 0, err
	}); err != nil {
		return id, fmt.Errorf("first task of the chain: %w", err)
	}
	t0 := time.Now()
	if err := leader.Signal(sig); err != nil {
		return id, err
	}
	_, newEpoch, err := c.WaitLeader(ctx, r.cfg.Timeout, epoch)
	if err != nil {
		return id, err
	}
	var since time.Time
	if err := c.Pool.QueryRow(ctx, `SELECT since FROM leadership`).Scan(&since); err != nil {
		return id, fmt.Errorf("read leadership: %w", err)
	}
	var first *time.Time
	if err := cluster.Poll(ctx, r.cfg.Timeout, func() (bool, error) {
		err := c.Pool.QueryRow(ctx, `SELECT min(assigned_at) FROM attempts WHERE run_id = $1 AND fencing_token >> 32 = $2`, id, newEpoch).Scan(&first)
		return first != nil, err
	}); err != nil {
		return id, fmt.Errorf("first dispatch by the new leader: %w", err)
	}
	code, err := leader.Wait(time.Minute)
	if err != nil {
		return id, err
	}
	r.rep.AddNote("recovery."+name+".office", since.Sub(t0).Seconds(), "s", fmt.Sprintf("%v → successor in office (epoch %d → %d)", sig, epoch, newEpoch))
	r.rep.AddNote("recovery."+name+".dispatch", first.Sub(t0).Seconds(), "s", fmt.Sprintf("%v → first dispatch by the successor; old leader exit code %d", sig, code))
	// The replica comes back as a follower for the next measurement.
	if err := leader.Start(); err != nil {
		return id, err
	}
	return id, nil
}

// workerKill starts a run of one sleeping shell task, kills its worker with SIGKILL once the
// attempt runs, and reports the time until the attempt is marked lost and until the retry
// started on the other worker.
func (r *runner) workerKill(ctx context.Context, c *cluster.Cluster) (string, error) {
	id, err := startRun(ctx, c, "rsleep")
	if err != nil {
		return "", err
	}
	var workerID string
	if err := cluster.Poll(ctx, r.cfg.Timeout, func() (bool, error) {
		err := c.Pool.QueryRow(ctx, `SELECT worker_id FROM attempts WHERE run_id = $1 AND number = 1 AND state = 'RUNNING'`, id).Scan(&workerID)
		if err != nil {
			return false, nil // no row yet
		}
		return true, nil
	}); err != nil {
		return id, fmt.Errorf("first attempt running: %w", err)
	}
	var victim *cluster.Process
	for _, w := range c.Workers {
		if w.ID == workerID {
			victim = w
		}
	}
	if victim == nil {
		return id, fmt.Errorf("attempt runs on unknown worker %q", workerID)
	}
	t0 := time.Now()
	if err := victim.Kill(); err != nil {
		return id, err
	}
	var lostAt, startedAt *time.Time
	var retryWorker string
	if err := cluster.Poll(ctx, r.cfg.Timeout, func() (bool, error) {
		err := c.Pool.QueryRow(ctx, `SELECT a1.finished_at, a2.started_at, coalesce(a2.worker_id, '')
			FROM attempts a1 LEFT JOIN attempts a2 ON a2.run_id = a1.run_id AND a2.task_id = a1.task_id AND a2.number = 2
			WHERE a1.run_id = $1 AND a1.number = 1`, id).Scan(&lostAt, &startedAt, &retryWorker)
		return startedAt != nil, err
	}); err != nil {
		return id, fmt.Errorf("retry of the killed worker's attempt: %w", err)
	}
	if retryWorker == workerID {
		return id, fmt.Errorf("the retry ran on the killed worker %s", workerID)
	}
	if lostAt != nil {
		r.rep.AddNote("recovery.worker_kill.lost", lostAt.Sub(t0).Seconds(), "s", "SIGKILL → attempt recorded as ended")
	} else {
		r.rep.Unavailable("recovery.worker_kill.lost", "attempt 1 has no finished_at")
	}
	r.rep.AddNote("recovery.worker_kill.restart", startedAt.Sub(t0).Seconds(), "s", "SIGKILL → attempt 2 started on "+retryWorker)
	return id, nil
}
