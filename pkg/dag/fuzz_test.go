package dag

import (
	"os"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics or hangs, and that whatever it accepts satisfies the
// invariants it promises.
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(designExample))
	f.Add([]byte("name: w\na: &a [*a]\ntasks: [{id: a, type: noop, depends_on: [a]}]\n"))
	f.Add([]byte("name: w\ntasks: [{id: a, type: noop, depends_on: [b]}, {id: b, type: noop, depends_on: [a]}]\n"))
	f.Add([]byte("name: w\nparams: {p: x}\ntasks: [{id: a, type: shell, command: [env], env: {A: '{{ if .params.p }}{{ secret \"s\" }}{{ end }}{{ .params.p }}'}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := Parse("f.yaml", data, Limits{MaxNodes: 20_000, MaxFileBytes: 64 << 10})
		if err != nil {
			if wf != nil {
				t.Fatal("workflow returned with an error")
			}
			return
		}
		g := wf.Graph
		if g == nil || g.Len() != len(wf.Tasks) || len(wf.Tasks) == 0 {
			t.Fatal("valid workflow without a full graph")
		}
		seen := make([]bool, g.Len())
		for _, i := range g.Order() {
			for _, u := range g.Upstream(i) {
				if !seen[u] {
					t.Fatalf("order lists %s before its upstream %s", g.ID(i), g.ID(u))
				}
			}
			seen[i] = true
		}
		for _, task := range wf.Tasks {
			r, err := task.Render(nil)
			if err != nil {
				t.Fatalf("task %s does not render with its defaults: %v", task.ID, err)
			}
			// A rendering references only secrets the task declares, with well-formed placeholders.
			for _, ref := range r.Secrets {
				if !ref.Valid() || !slices.Contains(task.Secrets, ref.Name) {
					t.Fatalf("task %s: rendering references %+v; the task declares %q", task.ID, ref, task.Secrets)
				}
			}
		}
	})
}
