package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-io/cairn/pkg/dag"
)

// validate times dag.Parse (parse + validate + topological sort) in this process; the same
// shapes as pkg/dag's BenchmarkParse (wide: a head, a fan-out, a join).
func (r *runner) validate(ctx context.Context) error {
	r.rep.Workload("validate", "sizes", joinInts(r.cfg.Sizes), "shapes", "wide,chain", "measure", "best of up to 5 parses within 2s")
	for _, shape := range []string{"wide", "chain"} {
		for _, n := range r.cfg.Sizes {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var data []byte
			if shape == "wide" {
				data = []byte(diamondYAML("v", n))
			} else {
				data = []byte(chainYAML("v", n))
			}
			lim := dag.Limits{MaxTasks: n, MaxFileBytes: n*128 + 4096, MaxNodes: n*16 + 1024}
			name := fmt.Sprintf("validate.%s.%d", shape, n)
			best := time.Duration(-1)
			start := time.Now()
			for i := 0; i < 5 && (i == 0 || time.Since(start) < 2*time.Second); i++ {
				t := time.Now()
				wf, err := dag.Parse("bench.yaml", data, lim)
				d := time.Since(t)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if got := len(wf.Graph.Order()); got != n {
					return fmt.Errorf("%s: topological order has %d tasks, want %d", name, got, n)
				}
				if best < 0 || d < best {
					best = d
				}
			}
			r.rep.AddNote(name, ms(best), "ms", fmt.Sprintf("%.0f ns/task", float64(best.Nanoseconds())/float64(n)))
		}
	}
	return nil
}
