package dag

import (
	"fmt"
	"strings"
)

// validate runs the checks that need the whole workflow: unique ids, dependencies, cycles and
// trigger rules that can never fire. It builds wf.Graph when there are no problems.
func (p *parser) validate(wf *Workflow, raws []rawTask) {
	n := len(wf.Tasks)
	ids := make([]string, n)
	rules := make([]TriggerRule, n)
	index := make(map[string]int, n)
	for i, t := range wf.Tasks {
		ids[i], rules[i] = t.ID, t.TriggerRule
		if t.ID == "" {
			continue
		}
		if first, dup := index[t.ID]; dup {
			p.add(raws[i].id, ErrInvalid, where{t.ID, i}, field("id"), "duplicate task id %q (first defined at line %d)", t.ID, wf.Tasks[first].Pos.Line)
			continue
		}
		index[t.ID] = i
	}
	edges := 0
	for _, t := range wf.Tasks {
		edges += len(t.DependsOn)
	}
	up, down := make([]int, 0, edges), make([]int, 0, edges)
	listedBy := make([]int, n) // listedBy[u] = i+1 once task i has listed u: duplicate check in O(1)
	for i, t := range wf.Tasks {
		w := where{t.ID, i}
		for j, dep := range t.DependsOn {
			f := field("depends_on").at(j)
			u, ok := index[dep]
			switch {
			case dep == t.ID:
				p.add(raws[i].deps[j], ErrInvalid, w, f, "depends on itself")
			case !ok:
				p.add(raws[i].deps[j], ErrInvalid, w, f, "depends_on %q is not a task in this workflow%s", dep, p.suggest(dep, ids))
			case listedBy[u] == i+1:
				p.add(raws[i].deps[j], ErrInvalid, w, f, "depends_on lists %q twice", dep)
			default:
				listedBy[u] = i + 1
				up = append(up, u)
				down = append(down, i)
			}
		}
	}
	for i, t := range wf.Tasks {
		w, at := where{t.ID, i}, raws[i].rule
		switch {
		case len(t.DependsOn) == 0 && !t.TriggerRule.canFireWithoutUpstream():
			p.add(at, ErrInvalid, w, field("trigger_rule"), "trigger_rule %s can never fire: the task has no upstream (add depends_on, or remove trigger_rule)", t.TriggerRule)
		case t.TriggerRule == OneFailed && allRootNoops(wf, index, t.DependsOn):
			p.add(at, ErrInvalid, w, field("trigger_rule"), "trigger_rule one_failed can never fire: every upstream task is a noop task without upstream, which always succeeds")
		}
	}
	g, cycles := newGraph(ids, index, rules, up, down, p.lim.MaxErrors)
	for _, cyc := range cycles {
		first, prev := cyc[0], cyc[len(cyc)-1]
		at := raws[first].node
		for j, dep := range wf.Tasks[first].DependsOn {
			if dep == ids[prev] {
				at = raws[first].deps[j]
				break
			}
		}
		p.add(at, ErrInvalid, where{ids[first], first}, field("depends_on"), "dependency cycle: %s", formatCycle(ids, cyc))
	}
	if len(p.errs) == 0 {
		wf.Graph = g
	}
}

// allRootNoops reports whether every dependency is a noop task with no dependencies of its own.
func allRootNoops(wf *Workflow, index map[string]int, deps []string) bool {
	for _, d := range deps {
		u, ok := index[d]
		if !ok || wf.Tasks[u].Type != TaskNoop || len(wf.Tasks[u].DependsOn) > 0 {
			return false
		}
	}
	return true
}

// formatCycle prints a cycle as a → b → c → a, eliding the middle of very long ones.
func formatCycle(ids []string, cyc []int) string {
	const head, tail = 10, 5
	var b strings.Builder
	for k, i := range cyc {
		if len(cyc) > head+tail && k == head {
			fmt.Fprintf(&b, "… (%d more) … → ", len(cyc)-head-tail)
		}
		if len(cyc) > head+tail && k >= head && k < len(cyc)-tail {
			continue
		}
		b.WriteString(ids[i])
		b.WriteString(" → ")
	}
	b.WriteString(ids[cyc[0]])
	return b.String()
}
