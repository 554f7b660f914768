package workload

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
)

// hop runs one chain of noop tasks and reports, per link, the time from a task's recorded
// completion (attempts.finished_at) to its successor's start on a worker (started_at), split
// into completion → assignment and assignment → start.
func (r *runner) hop(ctx context.Context) error {
	r.rep.Workload("hop", "chain", r.cfg.Chain, "workers", 1, "slots", r.cfg.Slots, "task", "noop")
	c, err := r.env.NewCluster(ctx, "hop", cluster.Spec{Schedulers: 1, Workers: 1, Slots: r.cfg.Slots,
		SessionTTL: r.cfg.SessionTTL, LeaseTTL: r.cfg.LeaseTTL, AdoptGrace: r.cfg.AdoptGrace})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := apply(ctx, c, chainYAML("chain", r.cfg.Chain)); err != nil {
		return err
	}
	id, err := startRun(ctx, c, "chain")
	if err != nil {
		r.errorsFigure("hop.errors", 1, err.Error())
		return r.hopUnavailable("run not started")
	}
	out, err := waitRuns(ctx, c, []string{id}, r.cfg.Timeout)
	if err != nil {
		return err
	}
	r.errorsFigure("hop.errors", 1-out.count("SUCCEEDED"), out.String())
	if out.count("SUCCEEDED") != 1 {
		return r.hopUnavailable("run did not succeed")
	}
	rows, err := c.Pool.Query(ctx, `SELECT assigned_at, started_at, finished_at FROM attempts
		WHERE run_id = $1 AND state = 'SUCCEEDED' ORDER BY task_id`, id)
	if err != nil {
		return fmt.Errorf("read attempts: %w", err)
	}
	type att struct{ assigned, started, finished time.Time }
	var as []att
	for rows.Next() {
		var a att
		if err := rows.Scan(&a.assigned, &a.started, &a.finished); err != nil {
			rows.Close()
			return fmt.Errorf("read attempts: %w", err)
		}
		as = append(as, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read attempts: %w", err)
	}
	if len(as) != r.cfg.Chain {
		return fmt.Errorf("chain run has %d succeeded attempts, want %d", len(as), r.cfg.Chain)
	}
	var hops, toAssign, toStart []time.Duration
	var sum time.Duration
	for i := 1; i < len(as); i++ {
		h := as[i].started.Sub(as[i-1].finished)
		hops = append(hops, h)
		toAssign = append(toAssign, as[i].assigned.Sub(as[i-1].finished))
		toStart = append(toStart, as[i].started.Sub(as[i].assigned))
		sum += h
	}
	slices.Sort(hops)
	slices.Sort(toAssign)
	slices.Sort(toStart)
	r.hopMean = sum / time.Duration(len(hops))
	r.rep.AddNote("hop.p50", ms(percentile(hops, 50)), "ms", "completion recorded → successor started")
	r.rep.AddNote("hop.p99", ms(percentile(hops, 99)), "ms", "")
	r.rep.AddNote("hop.max", ms(hops[len(hops)-1]), "ms", "")
	r.rep.AddNote("hop.assign_p50", ms(percentile(toAssign, 50)), "ms", "completion recorded → successor assigned")
	r.rep.AddNote("hop.start_p50", ms(percentile(toStart, 50)), "ms", "assigned → started on the worker")
	total := as[len(as)-1].finished.Sub(as[0].assigned)
	r.rep.AddNote("hop.chain_total", total.Seconds(), "s", fmt.Sprintf("%d tasks, first dispatch to last completion", r.cfg.Chain))
	return nil
}

func (r *runner) hopUnavailable(why string) error {
	for _, n := range []string{"hop.p50", "hop.p99", "hop.max", "hop.assign_p50", "hop.start_p50", "hop.chain_total"} {
		r.rep.Unavailable(n, why)
	}
	return nil
}
