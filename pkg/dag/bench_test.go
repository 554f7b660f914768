package dag

import (
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

// BenchmarkParse measures parse + validate + topological sort of generated workflows and reports
// ns/task; compare the figures across sizes to see that growth is linear.
func BenchmarkParse(b *testing.B) {
	for _, shape := range []string{"chain", "wide"} {
		for _, n := range []int{1_000, 10_000, 100_000} {
			data := genDAG(shape, n)
			lim := bigLimits(n)
			b.Run(fmt.Sprintf("%s/%d", shape, n), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					wf, err := Parse("bench.yaml", data, lim)
					if err != nil {
						b.Fatal(err)
					}
					if len(wf.Graph.Order()) != n {
						b.Fatal("short order")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/task")
			})
		}
	}
}

// BenchmarkYAMLBaseline measures only yaml.v3 building the node tree of the largest input. Parse
// no longer pays it for this input (see BenchmarkFastYAML); it is what a file outside the fast
// path's subset costs.
func BenchmarkYAMLBaseline(b *testing.B) {
	data := genDAG("chain", 100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/task")
}

// BenchmarkFastYAML measures only the fast path building the same tree as BenchmarkYAMLBaseline:
// the floor under BenchmarkParse/chain/100000; the difference is validation and the graph.
func BenchmarkFastYAML(b *testing.B) {
	data := genDAG("chain", 100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := fastYAML(data); !ok {
			b.Fatal("fast path declined")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/task")
}
