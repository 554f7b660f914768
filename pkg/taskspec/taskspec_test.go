package taskspec_test

import (
	"slices"
	"testing"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

func TestFromDAG(t *testing.T) {
	wf, err := dag.Parse("t.yaml", []byte(`
name: t
params: {who: world}
tasks:
  - {id: sh, type: shell, command: ["echo", "{{ .params.who }}"], env: {A: "{{ .params.who }}"}}
  - {id: web, type: http, http: {method: POST, url: "http://127.0.0.1/{{ .params.who }}", body: "b", expect_status: [204]}}
  - {id: nothing, type: noop}
`), dag.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	spec := func(i int) executor.Spec {
		r, err := wf.Tasks[i].Render(map[string]string{"who": "you"})
		if err != nil {
			t.Fatal(err)
		}
		return taskspec.FromDAG(wf.Tasks[i], r)
	}
	if s := spec(0); s.Type != executor.TypeShell || !slices.Equal(s.Shell.Argv, []string{"echo", "you"}) || s.Shell.Env["A"] != "you" {
		t.Errorf("shell spec = %+v %+v", s, s.Shell)
	}
	if s := spec(1); s.Type != executor.TypeHTTP || s.HTTP.URL != "http://127.0.0.1/you" || s.HTTP.Method != "POST" ||
		s.HTTP.Body != "b" || !slices.Equal(s.HTTP.ExpectStatus, []int{204}) {
		t.Errorf("http spec = %+v %+v", s, s.HTTP)
	}
	if s := spec(2); s.Type != executor.TypeNoop || s.Shell != nil || s.HTTP != nil {
		t.Errorf("noop spec = %+v", s)
	}
}
