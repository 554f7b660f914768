package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
)

// throughput runs, for each worker count, one wide run and many concurrent small runs on a
// fresh cluster, and reports tasks/s from the first dispatch to the last completion, and the
// peak RSS (VmHWM) of the scheduler and of the largest worker.
func (r *runner) throughput(ctx context.Context) error {
	r.rep.Workload("throughput", "wide", r.cfg.Wide, "runs", r.cfg.Runs, "run_tasks", r.cfg.RunTasks, "run_shape", "fan-out/join",
		"workers", joinInts(r.cfg.Workers), "slots", joinInts(r.cfg.ThroughputSlots), "start_clients", r.cfg.Clients, "task", "noop")
	profiled := false
	for _, slots := range r.cfg.ThroughputSlots {
		for _, w := range r.cfg.Workers {
			for _, shape := range []string{"wide", "runs"} {
				prof := ""
				if r.cfg.CPUProfile != "" && !profiled && shape == "wide" {
					prof, profiled = r.cfg.CPUProfile, true
				}
				if err := r.throughputCase(ctx, shape, w, slots, prof); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *runner) throughputCase(ctx context.Context, shape string, workers, slots int, profile string) error {
	key := fmt.Sprintf("%s.w%d.s%d", shape, workers, slots)
	c, err := r.env.NewCluster(ctx, "throughput-"+shape+fmt.Sprintf("-w%d-s%d", workers, slots), cluster.Spec{
		Schedulers: 1, Workers: workers, Slots: slots, SessionTTL: r.cfg.SessionTTL,
		LeaseTTL: r.cfg.LeaseTTL, AdoptGrace: r.cfg.AdoptGrace, CPUProfile: profile,
	})
	if err != nil {
		return err
	}
	defer c.Close()

	if r.cfg.PGTop > 0 {
		if _, err := c.Pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return fmt.Errorf("--pg-top: %w", err)
		}
		var lsn string
		if err := c.Pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text FROM pg_stat_statements_reset()`).Scan(&lsn); err != nil {
			return fmt.Errorf("--pg-top: %w", err)
		}
		defer r.pgTop(ctx, c, key, lsn)
	}
	before, cerr := leaderCommits(ctx, c.Schedulers[0].OpsAddr)
	var ids []string
	failed, tasks := 0, 0
	var firstErr error
	began := time.Now()
	if shape == "wide" {
		if err := apply(ctx, c, wideYAML("wide", r.cfg.Wide)); err != nil {
			return err
		}
		id, err := startRun(ctx, c, "wide")
		if err != nil {
			failed, firstErr = 1, err
		} else {
			ids = []string{id}
		}
		tasks = r.cfg.Wide
	} else {
		if err := apply(ctx, c, diamondYAML("small", r.cfg.RunTasks)); err != nil {
			return err
		}
		ids, failed, firstErr = startRuns(ctx, c, "small", r.cfg.Runs, r.cfg.Clients)
		tasks = len(ids) * r.cfg.RunTasks
	}
	startedIn := time.Since(began)
	out, err := waitRuns(ctx, c, ids, r.cfg.Timeout)
	if err != nil {
		return err
	}
	why := out.String()
	if firstErr != nil {
		why += fmt.Sprintf("; %d start(s) failed, first: %v", failed, firstErr)
	}
	r.errorsFigure("throughput."+key+".errors", failed+len(ids)-out.count("SUCCEEDED"), why)

	note := fmt.Sprintf("%d tasks", tasks)
	if shape == "runs" {
		note = fmt.Sprintf("%d runs x %d tasks, started in %v", len(ids), r.cfg.RunTasks, startedIn.Round(time.Millisecond))
	}
	if sp, err := attemptSpan(ctx, c, ids); err != nil || out.pending > 0 {
		r.rep.Unavailable("throughput."+key, fmt.Sprintf("runs unfinished or no attempt: %v", err))
		r.rep.Unavailable("throughput."+key+".seconds", "")
	} else {
		tps := float64(tasks) / sp.seconds()
		if pg := r.pgbench[1]; pg > 0 {
			note += fmt.Sprintf("; %.2fx pgbench c1", tps/pg)
		}
		r.rep.AddNote("throughput."+key, tps, "tasks/s", note)
		r.rep.AddNote("throughput."+key+".seconds", sp.seconds(), "s", "first dispatch to last completion")
	}
	r.commitFigures(ctx, "throughput."+key, c.Schedulers[0].OpsAddr, before, cerr)

	mem, err := c.Schedulers[0].Memory()
	if err != nil {
		r.rep.Unavailable("rss."+key+".scheduler_peak", err.Error())
	} else {
		r.rep.AddNote("rss."+key+".scheduler_peak", float64(mem.Peak)/mib, "MiB", "VmHWM")
	}
	var peak int64
	var werr error
	for _, wp := range c.Workers {
		m, err := wp.Memory()
		if err != nil {
			werr = err
			continue
		}
		peak = max(peak, m.Peak)
	}
	if peak == 0 {
		r.rep.Unavailable("rss."+key+".worker_peak", fmt.Sprint(werr))
	} else {
		r.rep.AddNote("rss."+key+".worker_peak", float64(peak)/mib, "MiB", "VmHWM, largest worker")
	}
	return nil
}

// commitFigures reports the leader's group commits since before: how many, their mean size
// (groups, i.e. inputs such as one result or one assignment) and their mean duration.
// commits × commit_ms close to the case's seconds means the commit path is the bound.
func (r *runner) commitFigures(ctx context.Context, key, opsAddr string, before commitStats, err error) {
	var after commitStats
	if err == nil {
		after, err = leaderCommits(ctx, opsAddr)
	}
	switch {
	case err != nil:
		r.rep.Unavailable(key+".commits", fmt.Sprintf("leader metrics: %v", err))
		return
	case after.commits <= before.commits:
		r.rep.Unavailable(key+".commits", "the leader's /metrics show no group commit during the case")
		return
	}
	d := after.minus(before)
	r.rep.AddNote(key+".commits", d.commits, "transactions", "leader group commits during the workload")
	r.rep.AddNote(key+".batch_groups", d.groups/d.commits, "groups", "mean groups per commit")
	r.rep.AddNote(key+".commit_ms", 1000*d.seconds/d.commits, "ms", "mean commit duration")
}

// pgTop prints, as comment lines, the WAL PostgreSQL wrote since lsn (the whole server, i.e.
// this case; from the WAL position — pg_stat_wal lags, a backend reports it up to seconds
// later) and the statements of the case's database it spent most time executing
// (pg_stat_statements, reset at the start of the case).
func (r *runner) pgTop(ctx context.Context, c *cluster.Cluster, key, lsn string) {
	var bytes float64
	if err := c.Pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, lsn).Scan(&bytes); err != nil {
		r.rep.Notef("pg-top %s: WAL: %v", key, err)
	} else {
		r.rep.Notef("pg-top %s: WAL %.1f MiB written during the case", key, bytes/(1<<20))
	}
	rows, err := c.Pool.Query(ctx, `SELECT calls, total_exec_time, rows,
			regexp_replace(left(query, 400), '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT $1`, r.cfg.PGTop)
	if err != nil {
		r.rep.Notef("pg-top %s: %v", key, err)
		return
	}
	defer rows.Close()
	r.rep.Notef("pg-top %s: calls, total ms, ms/call, rows/call, statement", key)
	for rows.Next() {
		var calls, n int64
		var ms float64
		var q string
		if err := rows.Scan(&calls, &ms, &n, &q); err != nil {
			r.rep.Notef("pg-top %s: %v", key, err)
			return
		}
		r.rep.Notef("pg-top %8d %9.1f %7.3f %7.1f  %.160s", calls, ms, ms/float64(max(calls, 1)), float64(n)/float64(max(calls, 1)), q)
	}
	if err := rows.Err(); err != nil {
		r.rep.Notef("pg-top %s: %v", key, err)
	}
}
