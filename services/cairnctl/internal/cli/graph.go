package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cairn-io/cairn/pkg/dag"
)

func cmdGraph(e *env, args []string) int {
	fs := newFlags(e, "graph")
	format := fs.String("format", "dot", "output format: dot (Graphviz) or mermaid")
	files, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(files) != 1 {
		return usageError(e, "graph", "want exactly one file, got %d", len(files))
	}
	write := map[string]func(io.Writer, *dag.Workflow){"dot": writeDOT, "mermaid": writeMermaid}[*format]
	if write == nil {
		return usageError(e, "graph", "unknown --format %q (want dot or mermaid)", *format)
	}
	wf, err := loadWorkflow(files[0])
	if err != nil {
		for _, x := range errorsOf(files[0], err) {
			fmt.Fprintln(e.stderr, x.Text)
		}
		return ExitFail
	}
	write(e.stdout, wf)
	return ExitOK
}

func label(t *dag.Task) string {
	l := t.ID + "\\n" + string(t.Type)
	if t.TriggerRule != dag.AllSuccess {
		l += " · " + string(t.TriggerRule)
	}
	return l
}

// writeDOT prints the DAG in Graphviz DOT, tasks in topological order, one rank per level.
func writeDOT(w io.Writer, wf *dag.Workflow) {
	g := wf.Graph
	fmt.Fprintf(w, "digraph %s {\n", strconv.Quote(wf.Name))
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintln(w, "  node [shape=box, style=rounded, fontname=\"Helvetica\"];")
	for _, i := range g.Order() {
		t := wf.Tasks[i]
		fmt.Fprintf(w, "  %s [label=%s];\n", strconv.Quote(t.ID), strconv.Quote(label(t)))
	}
	for _, i := range g.Order() {
		for _, d := range g.Downstream(i) {
			attr := ""
			if r := wf.Tasks[d].TriggerRule; r != dag.AllSuccess {
				attr = " [style=dashed]"
			}
			fmt.Fprintf(w, "  %s -> %s%s;\n", strconv.Quote(wf.Tasks[i].ID), strconv.Quote(wf.Tasks[d].ID), attr)
		}
	}
	fmt.Fprintln(w, "}")
}

// writeMermaid prints the DAG as a Mermaid flowchart. Task ids may hold '.' and '-', which
// Mermaid node ids do not accept everywhere, so nodes are named t0, t1... with the id as label.
func writeMermaid(w io.Writer, wf *dag.Workflow) {
	g := wf.Graph
	fmt.Fprintln(w, "flowchart LR")
	for _, i := range g.Order() {
		t := wf.Tasks[i]
		text := strings.ReplaceAll(label(t), "\\n", "<br/>")
		fmt.Fprintf(w, "  t%d[\"%s\"]\n", i, strings.ReplaceAll(text, "\"", "#quot;"))
	}
	for _, i := range g.Order() {
		for _, d := range g.Downstream(i) {
			arrow := "-->"
			if wf.Tasks[d].TriggerRule != dag.AllSuccess {
				arrow = "-.->"
			}
			fmt.Fprintf(w, "  t%d %s t%d\n", i, arrow, d)
		}
	}
}
