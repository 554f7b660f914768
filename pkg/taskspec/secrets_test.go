package taskspec_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

const attackYAML = `
name: t
params: {host: api.example, p: "", q: ""}
tasks:
  - id: sh
    type: shell
    command: [./run.sh, "{{ .params.q }}"]
    env:
      DB: '{{ secret "db" }}'
      GLUED: '{{ secret "db" }}{{ .params.p }}'
      FREE: '{{ .params.q }}'
  - id: web
    type: http
    http:
      url: 'https://{{ .params.host }}/v1'
      headers: {Authorization: 'Bearer {{ secret "api" }}', X-Note: '{{ .params.q }}'}
      body: '{"q": "{{ .params.q }}", "k": "{{ secret "api" }}"}'
`

var values = map[string]string{
	"db": "db-value-1", "db-admin": "ADMIN-VALUE", "api": "api-value-2", "other": "OTHER-VALUE",
}

// recordingLookup resolves from values and records what it was asked for.
func recordingLookup(asked *[]string) taskspec.Lookup {
	return func(name string) (string, bool) {
		*asked = append(*asked, name)
		v, ok := values[name]
		return v, ok
	}
}

func renderSpec(t *testing.T, wf *dag.Workflow, i int, params map[string]string) (executor.Spec, []dag.SecretRef) {
	t.Helper()
	r, err := wf.Tasks[i].Render(params)
	if err != nil {
		t.Fatal(err)
	}
	return taskspec.FromDAG(wf.Tasks[i], r), r.Secrets
}

func TestResolveSecrets(t *testing.T) {
	wf, err := dag.Parse("t.yaml", []byte(attackYAML), dag.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	spec, refs := renderSpec(t, wf, 0, map[string]string{"p": "-x"})
	var asked []string
	got, resolved, err := taskspec.ResolveSecrets(spec, refs, recordingLookup(&asked))
	if err != nil {
		t.Fatal(err)
	}
	if got.Shell.Env["DB"] != "db-value-1" || got.Shell.Env["GLUED"] != "db-value-1-x" || !slices.Equal(asked, []string{"db"}) {
		t.Fatalf("env %q, asked %q", got.Shell.Env, asked)
	}
	if len(resolved) != 1 || resolved[0].Name != "db" || resolved[0].Value != "db-value-1" {
		t.Fatalf("resolved %+v", resolved)
	}
	if !strings.HasPrefix(spec.Shell.Env["DB"], dag.PlaceholderPrefix) {
		t.Fatal("ResolveSecrets changed its input")
	}
	spec, refs = renderSpec(t, wf, 1, nil)
	got, _, err = taskspec.ResolveSecrets(spec, refs, recordingLookup(&asked))
	if err != nil {
		t.Fatal(err)
	}
	if h := got.HTTP; h.Headers["Authorization"] != "Bearer api-value-2" || h.Body != `{"q": "", "k": "api-value-2"}` || h.URL != "https://api.example/v1" {
		t.Fatalf("http %+v", h)
	}
	if spec.HTTP.Headers["Authorization"] == got.HTTP.Headers["Authorization"] {
		t.Fatal("ResolveSecrets changed its input's headers")
	}
	// Nothing to resolve: the spec comes back as it is.
	if same, res, err := taskspec.ResolveSecrets(spec, nil, nil); err != nil || res != nil || same.HTTP != spec.HTTP {
		t.Fatal("no refs")
	}
}

// TestParamsCannotMakeTheWorkerSubstitute follows the forgery attack through the worker-side
// substitution: whatever a run's params hold — template text, a placeholder an earlier
// rendering handed out, a suffix that would extend a name — the worker is asked only for the
// secrets the workflow references, and puts them only where the workflow put them.
func TestParamsCannotMakeTheWorkerSubstitute(t *testing.T) {
	wf, err := dag.Parse("t.yaml", []byte(attackYAML), dag.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	_, oldRefs := renderSpec(t, wf, 1, nil) // the attacker saw an earlier rendering of web
	_, oldShellRefs := renderSpec(t, wf, 0, nil)
	forged := []string{
		`{{ secret "other" }}`,
		oldRefs[0].Placeholder,      // api's placeholder from another rendering
		oldShellRefs[0].Placeholder, // db's
		dag.PlaceholderPrefix + "other-" + strings.Repeat("0", 32),
		dag.PlaceholderPrefix + "api-" + strings.Repeat("0", 32),
	}
	for _, f := range forged {
		params := map[string]string{"host": "evil.example/?leak=" + f, "p": "-admin", "q": f}
		for i := range wf.Tasks {
			spec, refs := renderSpec(t, wf, i, params)
			var asked []string
			got, _, err := taskspec.ResolveSecrets(spec, refs, recordingLookup(&asked))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(asked)
			if want := wf.Tasks[i].Secrets; !slices.Equal(asked, want) {
				t.Fatalf("param %q: the worker was asked for %q, the task references %q", f, asked, want)
			}
			var text string
			if s := got.Shell; s != nil {
				text = strings.Join(s.Argv, " ") + " " + s.Env["FREE"] + " " + strings.TrimPrefix(s.Env["GLUED"], "db-value-1")
				if s.Env["GLUED"] != "db-value-1-admin" {
					t.Fatalf("GLUED = %q", s.Env["GLUED"])
				}
			} else {
				text = got.HTTP.URL + " " + got.HTTP.Headers["X-Note"] + " " + strings.ReplaceAll(got.HTTP.Body, `"k": "api-value-2"`, "")
			}
			// The fields the param reached hold no secret value.
			for _, v := range values {
				if strings.Contains(text, v) {
					t.Fatalf("param %q put secret %q into a field the workflow did not: %q", f, v, text)
				}
			}
		}
	}
}

func TestResolveSecretsOnlyInSecretFields(t *testing.T) {
	// A placeholder in argv, script or workdir is never replaced, even one the refs list (a
	// leader that got this wrong must not make the worker put a value on a command line).
	ph := dag.PlaceholderPrefix + "db-" + strings.Repeat("ab", 16)
	refs := []dag.SecretRef{{Name: "db", Placeholder: ph}}
	spec := executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{Argv: []string{"echo", ph}, Workdir: "/srv/" + ph, Env: map[string]string{"A": ph}}}
	var asked []string
	got, _, err := taskspec.ResolveSecrets(spec, refs, recordingLookup(&asked))
	if err != nil {
		t.Fatal(err)
	}
	if got.Shell.Argv[1] != ph || got.Shell.Workdir != "/srv/"+ph || got.Shell.Env["A"] != "db-value-1" {
		t.Fatalf("shell %+v", got.Shell)
	}
}

func TestResolveSecretsErrors(t *testing.T) {
	ph := func(name string) string { return dag.PlaceholderPrefix + name + "-" + strings.Repeat("0f", 16) }
	spec := executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{Argv: []string{"env"}, Env: map[string]string{"A": ph("nope")}}}
	var asked []string
	_, _, err := taskspec.ResolveSecrets(spec, []dag.SecretRef{{Name: "zz-missing", Placeholder: ph("zz-missing")}, {Name: "db", Placeholder: ph("db")}, {Name: "nope", Placeholder: ph("nope")}}, recordingLookup(&asked))
	var me *taskspec.MissingSecretsError
	if !errors.Is(err, taskspec.ErrMissingSecret) || !errors.As(err, &me) || err.Error() != `secrets "nope", "zz-missing" are not defined` {
		t.Fatalf("missing: %v", err)
	}
	_, _, err = taskspec.ResolveSecrets(spec, []dag.SecretRef{{Name: "nope", Placeholder: ph("nope")}}, recordingLookup(&asked))
	if err == nil || err.Error() != `secret "nope" is not defined` {
		t.Fatalf("one missing: %v", err)
	}
	for _, bad := range [][]dag.SecretRef{
		{{Name: "db", Placeholder: "db"}},
		{{Name: "db", Placeholder: ph("other")}},
		{{Name: "db", Placeholder: ph("db")}, {Name: "db", Placeholder: ph("db")}},
	} {
		if _, _, err := taskspec.ResolveSecrets(spec, bad, recordingLookup(&asked)); !errors.Is(err, executor.ErrInvalidSpec) {
			t.Errorf("refs %+v: %v", bad, err)
		}
	}
}

// FuzzRunParamsCannotForgeSecrets: whatever the run's params, the worker is asked only for the
// secrets the task references, and no secret value lands in a field a param reaches.
func FuzzRunParamsCannotForgeSecrets(f *testing.F) {
	wf, err := dag.Parse("t.yaml", []byte(attackYAML), dag.DefaultLimits())
	if err != nil {
		f.Fatal(err)
	}
	r, _ := wf.Tasks[1].Render(nil)
	f.Add("api.example", "-admin", r.Secrets[0].Placeholder)
	f.Add("evil/?x="+dag.PlaceholderPrefix+"api-"+strings.Repeat("0", 32), `{{ secret "other" }}`, dag.PlaceholderPrefix+"db-")
	f.Fuzz(func(t *testing.T, host, p, q string) {
		for _, v := range values {
			if strings.Contains(host+p+q, v) {
				return // the param carries the value itself: nothing to forge
			}
		}
		params := map[string]string{"host": host, "p": p, "q": q}
		for i, task := range wf.Tasks {
			rt, err := task.Render(params)
			if err != nil {
				continue // params that do not render (a URL that is not one) never run
			}
			var asked []string
			got, _, err := taskspec.ResolveSecrets(taskspec.FromDAG(task, rt), rt.Secrets, recordingLookup(&asked))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(asked)
			if !slices.Equal(asked, task.Secrets) {
				t.Fatalf("task %d: asked for %q, references %q", i, asked, task.Secrets)
			}
			var reached string
			if s := got.Shell; s != nil {
				reached = strings.Join(s.Argv, "\x00") + "\x00" + s.Env["FREE"] + "\x00" + strings.TrimPrefix(s.Env["GLUED"], "db-value-1")
			} else {
				body := strings.Replace(got.HTTP.Body, `"k": "api-value-2"`, "", 1)
				reached = got.HTTP.URL + "\x00" + got.HTTP.Headers["X-Note"] + "\x00" + body
			}
			for _, v := range values {
				if strings.Contains(reached, v) {
					t.Fatalf("params %q put %q where a param reaches: %q", params, v, reached)
				}
			}
		}
	})
}
