package dag

import (
	"slices"
	"strconv"
)

// Graph is a workflow's dependency graph. Node i is Workflow.Tasks[i]; an edge u → d means d
// depends on u (u is upstream of d). Adjacency is stored as compressed int slices, so every
// algorithm here runs in time linear in tasks + edges and none of them recurses. A Graph is
// immutable and safe for concurrent use.
type Graph struct {
	ids   []string
	index map[string]int
	rules []TriggerRule

	upOff, upAdj     []int // upstream of i: upAdj[upOff[i]:upOff[i+1]], ascending
	downOff, downAdj []int // downstream of i: downAdj[downOff[i]:downOff[i+1]], ascending

	order []int // topological order
	rank  []int // rank[i] = position of i in order
	level []int // level[i] = length of the longest upstream path to i
	depth int   // number of levels
}

// newGraph builds the graph from edges (up[k] → down[k]), which must be grouped by ascending down
// index, with no self-edge and no duplicate. It returns the dependency cycles it found, at most
// maxCycles of them, each listed in execution direction and starting at its lowest index; the graph
// is only meaningful when there are none.
func newGraph(ids []string, index map[string]int, rules []TriggerRule, up, down []int, maxCycles int) (*Graph, [][]int) {
	n := len(ids)
	g := &Graph{ids: ids, index: index, rules: rules}
	g.downOff = make([]int, n+1)
	for _, u := range up {
		g.downOff[u+1]++
	}
	for i := 0; i < n; i++ {
		g.downOff[i+1] += g.downOff[i]
	}
	g.downAdj = make([]int, len(up))
	fill := make([]int, n)
	copy(fill, g.downOff[:n])
	for k, u := range up { // edges come grouped by ascending down, so each list is ascending
		g.downAdj[fill[u]] = down[k]
		fill[u]++
	}
	g.upOff = make([]int, n+1)
	for _, d := range down {
		g.upOff[d+1]++
	}
	for i := 0; i < n; i++ {
		g.upOff[i+1] += g.upOff[i]
	}
	g.upAdj = make([]int, len(down))
	copy(fill, g.upOff[:n])
	for u := 0; u < n; u++ { // walking u in ascending order makes every upstream list ascending
		for _, d := range g.downAdj[g.downOff[u]:g.downOff[u+1]] {
			g.upAdj[fill[d]] = u
			fill[d]++
		}
	}
	cycles := g.sort(maxCycles)
	return g, cycles
}

// sort computes order, rank and levels with an iterative depth-first search over upstream edges:
// tasks are taken in declaration order and each is listed right after its not-yet-listed upstream
// tasks (themselves taken in declaration order). A file already listing tasks in a valid order gets
// exactly that order back. Back edges are reported as cycles.
func (g *Graph) sort(maxCycles int) [][]int {
	n := len(g.ids)
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, n)
	g.order = make([]int, 0, n)
	var stack []dfsFrame
	var cycles [][]int
	for r := 0; r < n; r++ {
		if color[r] != white {
			continue
		}
		color[r] = grey
		stack = append(stack[:0], dfsFrame{r, g.upOff[r]})
		for len(stack) > 0 {
			top := len(stack) - 1
			f := &stack[top]
			if f.next < g.upOff[f.node+1] {
				u := g.upAdj[f.next]
				f.next++
				switch color[u] {
				case white:
					color[u] = grey
					stack = append(stack, dfsFrame{u, g.upOff[u]})
				case grey:
					if len(cycles) < maxCycles {
						cycles = append(cycles, cycleFrom(stack, u))
					}
				}
				continue
			}
			color[f.node] = black
			g.order = append(g.order, f.node)
			stack = stack[:top]
		}
	}
	g.rank = make([]int, n)
	g.level = make([]int, n)
	for pos, i := range g.order {
		g.rank[i] = pos
		lv := 0
		for _, u := range g.Upstream(i) {
			if g.level[u]+1 > lv {
				lv = g.level[u] + 1
			}
		}
		g.level[i] = lv
		if lv+1 > g.depth {
			g.depth = lv + 1
		}
	}
	return cycles
}

// dfsFrame is one task on the search stack and the next upstream edge to follow.
type dfsFrame struct{ node, next int }

// cycleFrom turns the search stack, whose frames from u to the top each depend on the next, and
// whose top depends on u, into the cycle in execution direction starting at its lowest index.
func cycleFrom(stack []dfsFrame, u int) []int {
	k := len(stack) - 1
	for k > 0 && stack[k].node != u {
		k--
	}
	cyc := make([]int, 0, len(stack)-k)
	for j := len(stack) - 1; j >= k; j-- {
		cyc = append(cyc, stack[j].node)
	}
	m := 0
	for j := range cyc {
		if cyc[j] < cyc[m] {
			m = j
		}
	}
	return append(cyc[m:], cyc[:m]...)
}

// Len returns the number of tasks.
func (g *Graph) Len() int { return len(g.ids) }

// ID returns the id of task i.
func (g *Graph) ID(i int) string { return g.ids[i] }

// Index returns the index of the task with the given id.
func (g *Graph) Index(id string) (int, bool) {
	i, ok := g.index[id]
	return i, ok
}

// Rule returns the trigger rule of task i.
func (g *Graph) Rule(i int) TriggerRule { return g.rules[i] }

// Upstream returns the tasks i depends on, in ascending index order. The slice is shared: do not
// modify it.
func (g *Graph) Upstream(i int) []int { return g.upAdj[g.upOff[i]:g.upOff[i+1]:g.upOff[i+1]] }

// Downstream returns the tasks that depend on i, in ascending index order. The slice is shared: do
// not modify it.
func (g *Graph) Downstream(i int) []int {
	return g.downAdj[g.downOff[i]:g.downOff[i+1]:g.downOff[i+1]]
}

// Order returns every task in topological order: each task comes after all its upstream tasks.
// Ties are broken by declaration order (see sort); the result is deterministic.
func (g *Graph) Order() []int { return slices.Clone(g.order) }

// Rank returns the position of task i in Order.
func (g *Graph) Rank(i int) int { return g.rank[i] }

// Level returns the length of the longest chain of upstream tasks leading to i (0 for a root).
func (g *Graph) Level(i int) int { return g.level[i] }

// Levels groups the tasks by Level, each group in ascending index order. All tasks of one level
// can run in parallel once the levels before it are done.
func (g *Graph) Levels() [][]int {
	count := make([]int, g.depth)
	for _, lv := range g.level {
		count[lv]++
	}
	flat := make([]int, len(g.level))
	levels := make([][]int, g.depth)
	off := 0
	for lv, c := range count {
		levels[lv] = flat[off : off : off+c]
		off += c
	}
	for i, lv := range g.level {
		levels[lv] = append(levels[lv], i)
	}
	return levels
}

// CriticalPathLength returns the number of tasks on the longest dependency chain: the least
// number of sequential steps a run needs with unlimited parallelism.
func (g *Graph) CriticalPathLength() int { return g.depth }

// Descendants returns every task downstream of i, directly or transitively, in topological order.
func (g *Graph) Descendants(i int) []int {
	seen := make([]bool, len(g.ids))
	out := []int{}
	queue := []int{i}
	for len(queue) > 0 {
		j := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, d := range g.Downstream(j) {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				queue = append(queue, d)
			}
		}
	}
	g.byRank(out)
	return out
}

func (g *Graph) byRank(s []int) {
	slices.SortFunc(s, func(a, b int) int { return g.rank[a] - g.rank[b] })
}

// Summary counts the outcomes of task i's upstream tasks.
func (g *Graph) Summary(i int, outcome func(int) Outcome) UpstreamSummary {
	var s UpstreamSummary
	for _, u := range g.Upstream(i) {
		s.Add(outcome(u))
	}
	return s
}

// Decide evaluates task i's trigger rule; it returns Wait unless i is OutcomePending.
func (g *Graph) Decide(i int, outcome func(int) Outcome) Decision {
	if outcome(i) != OutcomePending {
		return Wait
	}
	return g.rules[i].Evaluate(g.Summary(i, outcome))
}

// Decided is a decision about one task.
type Decided struct {
	Task     int
	Decision Decision // never Wait
}

// outcomeAfter is the outcome a task takes once d is applied.
func outcomeAfter(d Decision) Outcome {
	switch d {
	case Skip:
		return OutcomeSkipped
	case UpstreamFailed:
		return OutcomeUpstreamFailed
	default:
		return OutcomeActive
	}
}

// Ready scans the whole graph and returns every pending task whose trigger rule is decided, in
// topological order. Skip and UpstreamFailed decisions are terminal, so their consequences are
// included: a task downstream of one is decided as if the decision were already applied. Use it at
// the start of a run and after a failover; use Affected after each task finishes.
func (g *Graph) Ready(outcome func(int) Outcome) []Decided {
	decided := make([]Outcome, len(g.ids)) // outcome+1 of tasks decided by this call; 0 = none
	get := func(j int) Outcome {
		if o := decided[j]; o != 0 {
			return o - 1
		}
		return outcome(j)
	}
	var out []Decided
	for _, i := range g.order {
		if outcome(i) != OutcomePending {
			continue
		}
		d := g.rules[i].Evaluate(g.Summary(i, get))
		if d == Wait {
			continue
		}
		decided[i] = outcomeAfter(d) + 1
		out = append(out, Decided{i, d})
	}
	return out
}

// Affected returns the decisions that follow from task i having just reached a terminal outcome
// (outcome(i) must already report it): every pending downstream task whose trigger rule is now
// decided and, through Skip and UpstreamFailed decisions, the cascade beyond them, in topological
// order. It looks only at the tasks concerned, not the whole graph.
func (g *Graph) Affected(i int, outcome func(int) Outcome) []Decided {
	decided := map[int]Outcome{}
	get := func(j int) Outcome {
		if o, ok := decided[j]; ok {
			return o
		}
		return outcome(j)
	}
	var out []Decided
	queue := append([]int(nil), g.Downstream(i)...)
	for len(queue) > 0 {
		j := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if get(j) != OutcomePending {
			continue
		}
		d := g.rules[j].Evaluate(g.Summary(j, get))
		if d == Wait {
			continue
		}
		decided[j] = outcomeAfter(d)
		out = append(out, Decided{j, d})
		if d != Run {
			queue = append(queue, g.Downstream(j)...)
		}
	}
	slices.SortFunc(out, func(a, b Decided) int { return g.rank[a.Task] - g.rank[b.Task] })
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
