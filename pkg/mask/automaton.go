package mask

import (
	"slices"
	"strings"
)

// automaton is an Aho-Corasick matcher over bytes: one pass over the text, whatever the number
// of patterns, reporting at each position the longest pattern that ends there. Node 0 is the
// root; each node stands for the pattern prefix spelled by the path to it, and the state after
// reading a text is the node of the longest suffix of that text that is a pattern prefix.
//
// The root's transitions are a dense table (the common case: a byte that starts no pattern);
// other nodes keep their few edges sorted by byte, so memory is linear in the total pattern
// length, which matters for long secrets such as PEM keys.
type automaton struct {
	root  [256]int32
	first []int32 // edges of node n: edges[first[n]:first[n+1]]
	edges []edge
	fail  []int32
	best  []int32 // longest pattern that is a suffix of node n's string, -1 for none
	depth []int32
	lens  []int32 // pattern lengths
}

type edge struct {
	b  byte
	to int32
}

// newAutomaton builds the matcher for patterns, which must be non-empty. The trie is built
// from the patterns in sorted order, so that each new pattern shares the path of the previous
// one up to their common prefix and every node's children come in increasing byte order: no
// map per node, which keeps building fast for long patterns.
func newAutomaton(patterns []string) *automaton {
	order := make([]int, len(patterns))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(patterns[x], patterns[y]) })
	type rec struct {
		parent, child int32
		b             byte
	}
	var recs []rec
	depth := []int32{0}
	own := []int32{-1}
	stack := []int32{0} // stack[d]: node at depth d on the previous pattern's path
	prev := ""
	for _, pi := range order {
		p := patterns[pi]
		l := 0
		for l < len(p) && l < len(prev) && p[l] == prev[l] {
			l++
		}
		stack = stack[:l+1]
		for d := l; d < len(p); d++ {
			child := int32(len(depth))
			depth = append(depth, int32(d+1))
			own = append(own, -1)
			recs = append(recs, rec{stack[d], child, p[d]})
			stack = append(stack, child)
		}
		if n := stack[len(p)]; own[n] < 0 {
			own[n] = int32(pi)
		}
		prev = p
	}
	nodes := len(depth)
	a := &automaton{
		first: make([]int32, nodes+1),
		edges: make([]edge, len(recs)),
		fail:  make([]int32, nodes),
		best:  make([]int32, nodes),
		depth: depth,
		lens:  make([]int32, len(patterns)),
	}
	for i, p := range patterns {
		a.lens[i] = int32(len(p))
	}
	for _, r := range recs {
		a.first[r.parent+1]++
	}
	for i := 1; i <= nodes; i++ {
		a.first[i] += a.first[i-1]
	}
	fill := slices.Clone(a.first[:nodes])
	for _, r := range recs { // in creation order: each node's children by increasing byte
		a.edges[fill[r.parent]] = edge{r.b, r.child}
		fill[r.parent]++
	}
	for _, e := range a.edges[a.first[0]:a.first[1]] {
		a.root[e.b] = e.to
	}
	// Breadth first: a node's failure link is shallower, so it is final when the node is reached.
	a.best[0] = -1
	queue := make([]int32, 0, nodes)
	for _, e := range a.edges[a.first[0]:a.first[1]] {
		queue = append(queue, e.to) // fail = root
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		a.best[n] = own[n]
		if fb := a.best[a.fail[n]]; fb >= 0 && (a.best[n] < 0 || a.lens[fb] > a.lens[a.best[n]]) {
			a.best[n] = fb
		}
		for _, e := range a.edges[a.first[n]:a.first[n+1]] {
			a.fail[e.to] = a.step(a.fail[n], e.b)
			queue = append(queue, e.to)
		}
	}
	return a
}

// step is the transition from state n on byte c.
func (a *automaton) step(n int32, c byte) int32 {
	for n != 0 {
		es := a.edges[a.first[n]:a.first[n+1]]
		if len(es) <= 8 {
			for _, e := range es {
				if e.b == c {
					return e.to
				}
			}
		} else if i, ok := slices.BinarySearchFunc(es, c, func(e edge, c byte) int { return int(e.b) - int(c) }); ok {
			return es[i].to
		}
		n = a.fail[n]
	}
	return a.root[c]
}

// scan feeds text to the matcher from state n and calls found with the end offset (exclusive,
// relative to text) and the pattern index of the longest pattern ending at each position where
// one does. It returns the state after the text.
func (a *automaton) scan(text []byte, n int32, found func(end int, pattern int32)) int32 {
	for i, c := range text {
		n = a.step(n, c)
		if p := a.best[n]; p >= 0 {
			found(i+1, p)
		}
	}
	return n
}
