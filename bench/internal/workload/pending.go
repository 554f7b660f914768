package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// pending starts wide runs on a cluster with no worker, waits until the leader holds every
// task QUEUED, and reads the leader's RSS. The runs are then cancelled, by design.
func (r *runner) pending(ctx context.Context) error {
	runs := (r.cfg.Pending + r.cfg.PendingRun - 1) / r.cfg.PendingRun
	total := runs * r.cfg.PendingRun
	r.rep.Workload("pending", "tasks", total, "runs", runs, "tasks_per_run", r.cfg.PendingRun, "workers", 0, "task", "noop",
		"then", "runs cancelled (expected CANCELLED)")
	c, err := r.env.NewCluster(ctx, "pending", cluster.Spec{Schedulers: 1, Workers: 0,
		SessionTTL: r.cfg.SessionTTL, LeaseTTL: r.cfg.LeaseTTL, AdoptGrace: r.cfg.AdoptGrace})
	if err != nil {
		return err
	}
	defer c.Close()
	before, err := c.Schedulers[0].Memory()
	if err != nil {
		return err
	}
	if err := apply(ctx, c, wideYAML("pending", r.cfg.PendingRun)); err != nil {
		return err
	}
	ids, failed, firstErr := startRuns(ctx, c, "pending", runs, min(runs, 4))
	var queued int
	err = cluster.Poll(ctx, r.cfg.Timeout, func() (bool, error) {
		if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM task_runs WHERE run_id = ANY($1::text[]::uuid[]) AND state = 'QUEUED'`, ids).Scan(&queued); err != nil {
			return false, fmt.Errorf("count queued tasks: %w", err)
		}
		return queued == len(ids)*r.cfg.PendingRun, nil
	})
	held := err == nil
	if err != nil {
		r.rep.Notef("pending: only %d of %d tasks QUEUED: %v", queued, len(ids)*r.cfg.PendingRun, err)
	}
	time.Sleep(500 * time.Millisecond) // let the leader settle after its last write
	mem, merr := c.Schedulers[0].Memory()
	switch {
	case merr != nil:
		r.rep.Unavailable("rss.pending.leader", merr.Error())
		r.rep.Unavailable("rss.pending.leader_peak", "")
	case !held:
		r.rep.Unavailable("rss.pending.leader", fmt.Sprintf("only %d tasks queued", queued))
		r.rep.Unavailable("rss.pending.leader_peak", "")
	default:
		r.rep.AddNote("rss.pending.leader", float64(mem.RSS)/mib, "MiB",
			fmt.Sprintf("VmRSS holding %d queued tasks (%.0f MiB before the runs)", queued, float64(before.RSS)/mib))
		r.rep.AddNote("rss.pending.leader_peak", float64(mem.Peak)/mib, "MiB", "VmHWM")
		r.rep.AddNote("rss.pending.per_task", float64(mem.RSS-before.RSS)/float64(queued), "bytes", "RSS growth per queued task")
	}

	rc := cairnv1.NewRunServiceClient(c.Conn)
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := rc.CancelRun(cctx, &cairnv1.CancelRunRequest{RunId: id, Reason: "bench: pending workload done"})
		cancel()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("cancel run %s: %w", id, err)
		}
	}
	out, err := waitRuns(ctx, c, ids, r.cfg.Timeout)
	if err != nil {
		return err
	}
	why := out.String()
	if firstErr != nil {
		why += fmt.Sprintf("; first error: %v", firstErr)
	}
	r.errorsFigure("pending.errors", failed+len(ids)-out.count("CANCELLED"), why)
	return nil
}
