package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
	"github.com/cairn-io/cairn/bench/internal/report"
)

// ErrRunsFailed means some run of a workload did not end as expected; the figures were
// still printed.
var ErrRunsFailed = errors.New("runs did not end as expected")

// runner carries what the workloads share.
type runner struct {
	cfg      Config
	env      *cluster.Env
	rep      *report.Report
	progress io.Writer
	pgbench  map[int]float64 // clients → tps, for the throughput notes
	hopMean  time.Duration   // from the hop workload, sizes the recovery chains
	errors   int
}

// Run runs the selected workloads over a cluster environment under dir, printing figures to
// out and progress notes to progress. It returns ErrRunsFailed (wrapped) when a run ended in
// an unexpected state, and other errors when a workload could not be carried out; every
// workload still runs and every figure line is printed.
func Run(ctx context.Context, cfg Config, dir string, out, progress io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r := &runner{cfg: cfg, rep: report.New(out), progress: progress, pgbench: map[int]float64{}}
	began := time.Now()
	r.rep.Notef("cairn bench: workers=%s slots=%d session_ttl=%v lease_ttl=%v adopt_grace=%v timeout=%v",
		joinInts(cfg.Workers), cfg.Slots, cfg.SessionTTL, cfg.LeaseTTL, cfg.AdoptGrace, cfg.Timeout)
	needCluster := slices.ContainsFunc(Names, func(n string) bool { return n != "validate" && cfg.selected(n) })
	if needCluster {
		env, err := cluster.NewEnv(ctx, cluster.EnvConfig{Dir: dir, BuildProfiler: cfg.CPUProfile != "", Progress: progress, PGStatements: cfg.PGTop > 0})
		if err != nil {
			return err
		}
		defer env.Close()
		r.env = env
	}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"ceiling", r.ceiling}, {"validate", r.validate}, {"throughput", r.throughput}, {"hop", r.hop},
		{"submit", r.submit}, {"pending", r.pending}, {"recovery", r.recovery},
	}
	var errs []error
	for _, s := range steps {
		if !cfg.selected(s.name) {
			continue
		}
		t := time.Now()
		if err := s.f(ctx); err != nil {
			r.rep.Notef("workload %s failed: %v", s.name, err)
			errs = append(errs, fmt.Errorf("workload %s: %w", s.name, err))
		}
		fmt.Fprintf(progress, "# workload %s took %v\n", s.name, time.Since(t).Round(time.Millisecond))
		if ctx.Err() != nil {
			break
		}
	}
	r.rep.Table()
	r.rep.Notef("total time %v", time.Since(began).Round(time.Second))
	if r.errors > 0 {
		errs = append(errs, fmt.Errorf("%w: %d run(s) or measurement(s)", ErrRunsFailed, r.errors))
	}
	return errors.Join(errs...)
}

// errorsFigure prints <workload>.errors and adds n to the total.
func (r *runner) errorsFigure(name string, n int, why string) {
	r.errors += n
	r.rep.AddNote(name, float64(n), "runs", why)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
