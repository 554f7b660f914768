package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const bad = `name: bad
tasks:
  - {id: extract, type: noop}
  - {id: load, type: noop, depends_on: [extrct]}
  - {id: a, type: noop, depends_on: [b]}
  - {id: b, type: noop, depends_on: [a]}
`

func TestValidate(t *testing.T) {
	examples, _ := filepath.Glob("../../../../examples/*.yaml")
	if len(examples) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(examples))
	}
	code, out, errOut := run(t, append([]string{"validate"}, examples...)...)
	if code != ExitOK || errOut != "" {
		t.Fatalf("validate examples: exit %d, stderr %q", code, errOut)
	}
	if n := strings.Count(out, ": ok: "); n != len(examples) {
		t.Fatalf("stdout reports %d ok files, want %d:\n%s", n, len(examples), out)
	}

	p := writeFile(t, "bad.yaml", bad)
	code, _, errOut = run(t, "validate", p)
	if code != ExitFail {
		t.Fatalf("invalid file: exit %d, want %d", code, ExitFail)
	}
	for _, want := range []string{
		p + `:4:41: task "load": depends_on "extrct" is not a task in this workflow (did you mean "extract"?)`,
		`dependency cycle: a → b → a`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestValidateJSON(t *testing.T) {
	p := writeFile(t, "bad.yaml", bad)
	code, out, _ := run(t, "validate", "--json", p)
	if code != ExitFail {
		t.Fatalf("exit %d", code)
	}
	var res struct {
		Valid bool `json:"valid"`
		Files []struct {
			Errors []struct {
				Line, Column  int
				Task, Message string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Valid || len(res.Files) != 1 || len(res.Files[0].Errors) != 2 {
		t.Fatalf("unexpected result: %+v", res)
	}
	if e := res.Files[0].Errors[0]; e.Line != 4 || e.Column != 41 || e.Task != "load" {
		t.Fatalf("first error = %+v, want line 4 column 41 task load", e)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"validate"}, {"graph"}, {"graph", "--format", "png", "x.yaml"}, {"run", "x.yaml"}, {"run", "--local", "--parallel", "0", "x.yaml"}, {"run", "--local", "-p", "novalue", "x.yaml"}, {"dev", "--workers", "0"}, {"dev", "--concurrency", "-1"}, {"dev", "extra"}} {
		if code, _, errOut := run(t, args...); code != ExitUsage {
			t.Errorf("cairnctl %v: exit %d (stderr %q), want %d", args, code, errOut, ExitUsage)
		}
	}
}

func TestGraph(t *testing.T) {
	p := writeFile(t, "g.yaml", `name: g
tasks:
  - {id: a, type: noop}
  - {id: b, type: shell, command: ["true"], depends_on: [a]}
  - {id: c, type: noop, depends_on: [b], trigger_rule: all_done}
`)
	code, out, _ := run(t, "graph", p)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{`digraph "g" {`, `"a" -> "b";`, `"b" -> "c" [style=dashed];`} {
		if !strings.Contains(out, want) {
			t.Errorf("DOT lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "graph", "--format", "mermaid", p)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"flowchart LR", "t0 --> t1", "t1 -.-> t2", `t2["c<br/>noop · all_done"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("Mermaid lacks %q:\n%s", want, out)
		}
	}
}

func TestRunLocalExamples(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	out := t.TempDir()
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"etl.yaml", []string{"-p", "out_dir=" + out}},
		{"fanout.yaml", []string{"--parallel", "4"}},
		{"healthcheck.yaml", []string{"-p", "health_url=" + srv.URL + "/healthz", "-p", "hook_url=" + srv.URL + "/hook",
			"--egress-allow", "127.0.0.1/32"}}, // the test server; loopback is refused by default
	} {
		args := append([]string{"run", "--local", "../../../../examples/" + tc.file}, tc.args...)
		code, stdout, stderr := run(t, args...)
		if code != ExitOK {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", tc.file, code, stdout, stderr)
			continue
		}
		if !strings.Contains(stdout, ": SUCCEEDED in ") {
			t.Errorf("%s: no success summary:\n%s", tc.file, stdout)
		}
	}
	if hits.Load() != 2 {
		t.Errorf("healthcheck made %d requests, want 2 (check, notify-ok)", hits.Load())
	}
}

// TestRunLocalEgress: --local applies the workers' default egress policy (the loopback test
// server is refused, before any connection, and not retried); --egress-allow opens it and is
// shown; a bad CIDR is a usage error naming the flag.
func TestRunLocalEgress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	file := "../../../../examples/healthcheck.yaml"
	urls := []string{"-p", "health_url=" + srv.URL + "/healthz", "-p", "hook_url=" + srv.URL + "/hook"}

	code, stdout, _ := run(t, append([]string{"run", "--local", file}, urls...)...)
	if code != ExitFail || hits.Load() != 0 {
		t.Fatalf("default policy: exit %d, %d requests reached the server; want %d and none\n%s", code, hits.Load(), ExitFail, stdout)
	}
	for _, want := range []string{"check", "failed after 1 attempt(s): egress denied: 127.0.0.1 is loopback (127.0.0.0/8; allow it with --egress-allow)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "retrying") {
		t.Errorf("an egress refusal was retried:\n%s", stdout)
	}

	code, stdout, _ = run(t, append([]string{"run", "--local", "--egress-allow", "127.0.0.1/32", file}, urls...)...)
	if code != ExitOK || hits.Load() != 2 || !strings.Contains(stdout, "HTTP tasks may also call 127.0.0.1/32 (--egress-allow)") {
		t.Errorf("allowed: exit %d, %d requests\n%s", code, hits.Load(), stdout)
	}

	code, _, stderr := run(t, "run", "--local", "--egress-allow", "127.0.0.1", file)
	if code != ExitUsage || !strings.Contains(stderr, `--egress-allow: "127.0.0.1" is an address, not a CIDR (write 127.0.0.1/32)`) {
		t.Errorf("bad CIDR: exit %d, stderr %q", code, stderr)
	}
}

func TestRunLocalFailureExitsNonZero(t *testing.T) {
	p := writeFile(t, "f.yaml", `name: f
tasks:
  - {id: boom, type: shell, command: ["sh", "-c", "echo oops >&2; exit 3"]}
  - {id: after, type: noop, depends_on: [boom]}
`)
	code, out, _ := run(t, "run", "--local", "--json", p)
	if code != ExitFail {
		t.Fatalf("exit %d, want %d", code, ExitFail)
	}
	var rep struct {
		State string
		Tasks []struct {
			ID, State string
			ExitCode  *int `json:"exit_code"`
			Output    string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.State != "failed" || rep.Tasks[0].State != "failed" || rep.Tasks[1].State != "upstream_failed" {
		t.Fatalf("report = %+v", rep)
	}
	if rep.Tasks[0].ExitCode == nil || *rep.Tasks[0].ExitCode != 3 || !strings.Contains(rep.Tasks[0].Output, "oops") {
		t.Fatalf("boom: exit %v output %q, want 3 and its stderr", rep.Tasks[0].ExitCode, rep.Tasks[0].Output)
	}
}

func TestRunLocalSecrets(t *testing.T) {
	const value = "local-secret-value-9"
	p := writeFile(t, "s.yaml", `name: s
tasks:
  - {id: use, type: shell, env: {TOKEN: '{{ secret "api-token" }}'}, command: 'echo "got $TOKEN"; printf %s "$TOKEN" | base64'}
`)
	// Missing: an error that says where a local run looks, before anything runs.
	code, _, stderr := run(t, "run", "--local", p)
	if code != ExitFail || !strings.Contains(stderr, `secret "api-token" is not set`) || !strings.Contains(stderr, "CAIRN_SECRET_API_TOKEN") {
		t.Fatalf("missing secret: exit %d, stderr %q", code, stderr)
	}
	secrets := writeFile(t, "secrets", "api-token="+value+"\n")
	code, out, stderr := run(t, "run", "--local", "--json", "--secrets-file", secrets, p)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out, value) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(value))) || !strings.Contains(out, `got ***\n***`) {
		t.Fatalf("report shows the secret or lacks the mask:\n%s", out)
	}
	t.Setenv("CAIRN_SECRET_API_TOKEN", value)
	if code, out, _ := run(t, "run", "--local", "--json", p); code != ExitOK || strings.Contains(out, value) {
		t.Fatalf("from the environment: exit %d\n%s", code, out)
	}
}
