package dag

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// genDAG writes a workflow of n noop tasks: "chain" (each depends on the one before), "reverse"
// (the same chain declared last task first), "wide" (one root, n-2 parallel tasks, one join) or
// "cycle" (a chain whose first task depends on the last).
func genDAG(shape string, n int) []byte {
	var b strings.Builder
	b.Grow(n * 48)
	fmt.Fprintf(&b, "name: gen-%s\ntasks:\n", shape)
	id := func(i int) string { return fmt.Sprintf("t%06d", i) }
	switch shape {
	case "chain", "cycle":
		for i := 0; i < n; i++ {
			switch {
			case i > 0:
				fmt.Fprintf(&b, "  - {id: %s, type: noop, depends_on: [%s]}\n", id(i), id(i-1))
			case shape == "cycle":
				fmt.Fprintf(&b, "  - {id: %s, type: noop, depends_on: [%s]}\n", id(i), id(n-1))
			default:
				fmt.Fprintf(&b, "  - {id: %s, type: noop}\n", id(i))
			}
		}
	case "reverse":
		for i := n - 1; i >= 0; i-- {
			if i > 0 {
				fmt.Fprintf(&b, "  - {id: %s, type: noop, depends_on: [%s]}\n", id(i), id(i-1))
			} else {
				fmt.Fprintf(&b, "  - {id: %s, type: noop}\n", id(i))
			}
		}
	case "wide":
		fmt.Fprintf(&b, "  - {id: %s, type: noop}\n", id(0))
		for i := 1; i < n-1; i++ {
			fmt.Fprintf(&b, "  - {id: %s, type: noop, depends_on: [%s]}\n", id(i), id(0))
		}
		fmt.Fprintf(&b, "  - id: %s\n    type: noop\n    depends_on:\n", id(n-1))
		for i := 1; i < n-1; i++ {
			fmt.Fprintf(&b, "      - %s\n", id(i))
		}
	}
	return []byte(b.String())
}

// bigLimits admits generated workflows of up to n tasks.
func bigLimits(n int) Limits {
	return Limits{MaxTasks: n, MaxFileBytes: n*128 + 4096, MaxNodes: n*16 + 1024, MaxErrors: 10}
}

func mustParse(t testing.TB, src string) *Workflow {
	t.Helper()
	wf, err := Parse("test.yaml", []byte(src), Limits{})
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return wf
}

func ids(g *Graph, idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = g.ID(i)
	}
	return out
}

func TestGraphBasics(t *testing.T) {
	wf := mustParse(t, `
name: g
tasks:
  - {id: report, type: noop, depends_on: [load, audit]}
  - {id: extract, type: noop}
  - {id: load, type: noop, depends_on: [transform]}
  - {id: transform, type: noop, depends_on: [extract]}
  - {id: audit, type: noop, depends_on: [extract]}
  - {id: lonely, type: noop}
`)
	g := wf.Graph
	if got, want := ids(g, g.Order()), []string{"extract", "transform", "load", "audit", "report", "lonely"}; !slices.Equal(got, want) {
		t.Errorf("order: got %v, want %v", got, want)
	}
	var levels [][]string
	for _, l := range g.Levels() {
		levels = append(levels, ids(g, l))
	}
	if got, want := fmt.Sprint(levels), "[[extract lonely] [transform audit] [load] [report]]"; got != want {
		t.Errorf("levels: got %v, want %v", got, want)
	}
	if got := g.CriticalPathLength(); got != 4 {
		t.Errorf("critical path: got %d, want 4", got)
	}
	ex, _ := g.Index("extract")
	if got, want := ids(g, g.Descendants(ex)), []string{"transform", "load", "audit", "report"}; !slices.Equal(got, want) {
		t.Errorf("descendants: got %v, want %v", got, want)
	}
	rep, _ := g.Index("report")
	if got, want := ids(g, g.Upstream(rep)), []string{"load", "audit"}; !slices.Equal(got, want) {
		t.Errorf("upstream: got %v, want %v (ascending index)", got, want)
	}
	if got, want := ids(g, g.Downstream(ex)), []string{"transform", "audit"}; !slices.Equal(got, want) {
		t.Errorf("downstream: got %v, want %v", got, want)
	}
	if len(g.Descendants(rep)) != 0 || g.Len() != 6 || g.Level(rep) != 3 || g.Rank(rep) != 4 {
		t.Error("leaf, length, level or rank wrong")
	}
	if _, ok := g.Index("nope"); ok {
		t.Error("Index found an unknown id")
	}
	// Order returns a copy.
	o := g.Order()
	o[0] = 99
	if g.Order()[0] == 99 {
		t.Error("Order exposes its internal slice")
	}
}

func TestOrderKeepsValidDeclarationOrder(t *testing.T) {
	wf, err := Parse("w.yaml", genDAG("wide", 50), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for pos, i := range wf.Graph.Order() {
		if pos != i {
			t.Fatalf("order[%d] = %d: a file already in topological order must keep its order", pos, i)
		}
	}
}

// chainGraph builds an n-task chain graph directly, without YAML: declared in dependency order,
// or in reverse (last task first, which makes the depth-first search n deep), optionally closed
// into a cycle.
func chainGraph(n int, reverse, cycle bool) (*Graph, [][]int) {
	ids := make([]string, n)
	index := make(map[string]int, n)
	pos := func(k int) int { // declaration index of the k-th task of the chain
		if reverse {
			return n - 1 - k
		}
		return k
	}
	for k := 0; k < n; k++ {
		ids[pos(k)] = fmt.Sprintf("t%06d", k)
		index[ids[pos(k)]] = pos(k)
	}
	var up, down []int
	for i := 0; i < n; i++ { // edges grouped by ascending downstream index
		k := i
		if reverse {
			k = n - 1 - i
		}
		switch {
		case k > 0:
			up, down = append(up, pos(k-1)), append(down, i)
		case cycle:
			up, down = append(up, pos(n-1)), append(down, i)
		}
	}
	return newGraph(ids, index, make([]TriggerRule, n), up, down, 10)
}

// TestHugeChains checks that the graph algorithms handle 100,000-task chains, declared forwards
// and backwards, without deep recursion, and that a 100,000-task cycle gives a short message.
func TestHugeChains(t *testing.T) {
	const n = 100_000
	for _, reverse := range []bool{false, true} {
		g, cycles := chainGraph(n, reverse, false)
		if len(cycles) != 0 {
			t.Fatalf("reverse=%v: cycles in a chain", reverse)
		}
		for pos, i := range g.Order() {
			if g.ID(i) != fmt.Sprintf("t%06d", pos) {
				t.Fatalf("reverse=%v: order[%d] is %s", reverse, pos, g.ID(i))
			}
		}
		if g.CriticalPathLength() != n || len(g.Levels()) != n {
			t.Fatalf("reverse=%v: critical path %d, levels %d", reverse, g.CriticalPathLength(), len(g.Levels()))
		}
		root, _ := g.Index("t000000")
		if d := g.Descendants(root); len(d) != n-1 || g.ID(d[0]) != "t000001" || g.ID(d[n-2]) != "t099999" {
			t.Fatalf("reverse=%v: %d descendants", reverse, len(d))
		}
		// Finishing the root with a failure cascades UpstreamFailed down the whole chain.
		failed := func(i int) Outcome {
			if i == root {
				return OutcomeFailed
			}
			return OutcomePending
		}
		if got := g.Affected(root, failed); len(got) != n-1 || got[n-2].Decision != UpstreamFailed {
			t.Fatalf("reverse=%v: cascade decided %d tasks", reverse, len(got))
		}
	}
	g, cycles := chainGraph(n, false, true)
	if len(cycles) != 1 {
		t.Fatalf("want 1 cycle, got %d", len(cycles))
	}
	want := "t000000 → t000001 → t000002 → t000003 → t000004 → t000005 → t000006 → t000007 → t000008 → t000009 → … (99985 more) … → t099995 → t099996 → t099997 → t099998 → t099999 → t000000"
	if got := formatCycle(g.ids, cycles[0]); got != want {
		t.Fatalf("cycle:\n%s\nwant:\n%s", got, want)
	}
}

// TestParseLongChains parses chains end to end, declared backwards so that the topological sort
// has to go deep, and a long cycle.
func TestParseLongChains(t *testing.T) {
	const n = 20_000
	wf, err := Parse("reverse.yaml", genDAG("reverse", n), bigLimits(n))
	if err != nil {
		t.Fatal(err)
	}
	if order := wf.Graph.Order(); wf.Graph.ID(order[n-1]) != "t019999" || wf.Graph.CriticalPathLength() != n {
		t.Fatalf("last in order: %s, critical path %d", wf.Graph.ID(order[n-1]), wf.Graph.CriticalPathLength())
	}
	_, err = Parse("cycle.yaml", genDAG("cycle", n), bigLimits(n))
	want := "cycle.yaml:3:44: task \"t000000\": dependency cycle: t000000 → t000001 → t000002 → t000003 → t000004 → t000005 → t000006 → t000007 → t000008 → t000009 → … (19985 more) … → t019995 → t019996 → t019997 → t019998 → t019999 → t000000"
	if err == nil || err.Error() != want {
		t.Fatalf("cycle error:\n%v\nwant:\n%s", err, want)
	}
}

// randomWorkflow writes a random DAG of n tasks with random trigger rules. Shell tasks can fail.
func randomWorkflow(r *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString("name: random\ntasks:\n")
	rules := []TriggerRule{AllSuccess, AllDone, OneSuccess, OneFailed, NoneFailed}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: t%d\n    type: shell\n    command: [\"true\"]\n", i)
		var deps []string
		for j := 0; j < i; j++ {
			if r.IntN(4) == 0 {
				deps = append(deps, fmt.Sprintf("t%d", j))
			}
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "    depends_on: [%s]\n    trigger_rule: %s\n", strings.Join(deps, ", "), rules[r.IntN(len(rules))])
		}
	}
	return b.String()
}

// simulate drives a run to its end. Tasks that run succeed or fail according to fails; they
// finish in an order chosen by r. With incremental, decisions come from Affected after each
// completion; otherwise from a full Ready scan. Every task must be decided exactly once.
func simulate(t *testing.T, g *Graph, fails []bool, r *rand.Rand, incremental bool) []Outcome {
	t.Helper()
	out := make([]Outcome, g.Len())
	get := func(i int) Outcome { return out[i] }
	apply := func(ds []Decided) {
		for _, d := range ds {
			if out[d.Task] != OutcomePending {
				t.Fatalf("task %d decided twice", d.Task)
			}
			out[d.Task] = outcomeAfter(d.Decision)
		}
	}
	apply(g.Ready(get))
	for {
		var active []int
		for i, o := range out {
			if o == OutcomeActive {
				active = append(active, i)
			}
		}
		if len(active) == 0 {
			break
		}
		i := active[r.IntN(len(active))]
		out[i] = OutcomeSucceeded
		if fails[i] {
			out[i] = OutcomeFailed
		}
		if incremental {
			apply(g.Affected(i, get))
		} else {
			apply(g.Ready(get))
		}
	}
	for i, o := range out {
		if !o.Terminal() {
			t.Fatalf("task %d left %v", i, o)
		}
	}
	return out
}

// TestReadyAndAffectedAgree runs random workflows with random failures in random completion orders:
// the incremental and the full-scan planner must reach the same final states, whatever the order.
func TestReadyAndAffectedAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		n := 2 + r.IntN(25)
		src := randomWorkflow(r, n)
		wf, err := Parse("r.yaml", []byte(src), Limits{})
		if err != nil {
			continue // a generated rule that can never fire; rejected as it should be
		}
		fails := make([]bool, n)
		for i := range fails {
			fails[i] = r.IntN(3) == 0
		}
		want := simulate(t, wf.Graph, fails, r, false)
		for k := 0; k < 3; k++ {
			if got := simulate(t, wf.Graph, fails, r, true); !slices.Equal(got, want) {
				t.Fatalf("workflow:\n%s\nfails %v\nincremental %v\nfull scan   %v", src, fails, got, want)
			}
		}
	}
}

func TestAffectedCascades(t *testing.T) {
	wf := mustParse(t, `
name: g
tasks:
  - {id: a, type: shell, command: ["false"]}
  - {id: b, type: noop, depends_on: [a]}
  - {id: c, type: noop, depends_on: [b]}
  - {id: d, type: noop, depends_on: [c], trigger_rule: all_done}
  - {id: alert, type: noop, depends_on: [a], trigger_rule: one_failed}
  - {id: e, type: noop, depends_on: [d]}
`)
	g := wf.Graph
	out := []Outcome{OutcomeFailed, OutcomePending, OutcomePending, OutcomePending, OutcomePending, OutcomePending}
	got := g.Affected(0, func(i int) Outcome { return out[i] })
	want := "[{1 upstream_failed} {2 upstream_failed} {3 run} {4 run}]" // b, c upstream_failed; d (all_done) and alert run; e waits for d
	if fmt.Sprint(got) != want {
		t.Errorf("affected: got %v, want %v", got, want)
	}
	if d := g.Decide(5, func(i int) Outcome { return out[i] }); d != Wait {
		t.Errorf("e: %v", d)
	}
}
