package dag

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const designExample = `name: nightly-etl
description: Load yesterday's orders
schedule: "0 2 * * *"
timezone: America/New_York
params: {day: "2026-01-01", mode: full}
defaults:
  retries: 3
  backoff: {initial: 2s, max: 5m}
  timeout: 10m
  pool: etl
max_active_tasks: 16
tasks:
  - id: extract
    type: shell
    command: ["./extract.sh", "{{ .params.day }}"]
    env: {MODE: "{{ .params.mode }}", PORT: 0080}
    workdir: /srv/etl
    timeout: 5m
  - id: notify
    type: http
    depends_on: [extract]
    trigger_rule: all_success
    http: {method: POST, url: "https://hooks.example/etl", body: '{"day":"{{ .params.day }}"}',
           headers: {Content-Type: application/json}, expect_status: [200, 204]}
    retries: 5
    backoff: {jitter: false}
    pool: default
  - id: done
    type: noop
    depends_on: [notify]
`

func TestParseResolvesEverything(t *testing.T) {
	wf := mustParse(t, designExample)
	if wf.Name != "nightly-etl" || wf.Description != "Load yesterday's orders" || wf.MaxActiveTasks != 16 || wf.Timezone != "America/New_York" {
		t.Errorf("workflow fields: %+v", wf)
	}
	if got, want := wf.Params, []Param{{"day", "2026-01-01"}, {"mode", "full"}}; !slices.Equal(got, want) {
		t.Errorf("params: %v", got)
	}
	next := wf.Schedule.Next(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 2, 6, 0, 0, 0, time.UTC); !next.Equal(want) { // 02:00 EDT
		t.Errorf("next activation: %v, want %v", next.UTC(), want)
	}
	ex, no, done := wf.Tasks[0], wf.Tasks[1], wf.Tasks[2]
	wantBackoff := Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute, Multiplier: 2, Jitter: true}
	if ex.Retries != 3 || ex.Timeout != 5*time.Minute || ex.Pool != "etl" || ex.Backoff != wantBackoff || ex.TriggerRule != AllSuccess {
		t.Errorf("extract resolved: %+v", ex)
	}
	if ex.Shell.Argv[1] != "{{ .params.day }}" || ex.Shell.Env["PORT"] != "0080" || ex.Shell.Workdir != "/srv/etl" || ex.HTTP != nil {
		t.Errorf("extract shell: %+v", ex.Shell)
	}
	wantBackoff.Jitter = false
	if no.Retries != 5 || no.Timeout != 10*time.Minute || no.Pool != "default" || no.Backoff != wantBackoff {
		t.Errorf("notify resolved: %+v", no)
	}
	if no.HTTP.Method != "POST" || !slices.Equal(no.HTTP.ExpectStatus, []int{200, 204}) || no.HTTP.Headers["Content-Type"] != "application/json" {
		t.Errorf("notify http: %+v", no.HTTP)
	}
	if done.Shell != nil || done.HTTP != nil || done.Pos != (Pos{28, 5}) {
		t.Errorf("done: %+v", done)
	}
	// Built-in defaults when nothing is set.
	wf = mustParse(t, "name: w\ntasks: [{id: a, type: noop}]\n")
	if a := wf.Tasks[0]; a.Retries != 0 || a.Timeout != DefaultTimeout || a.Pool != DefaultPool || a.Backoff != DefaultBackoff() || wf.Schedule != nil {
		t.Errorf("built-in defaults: %+v", a)
	}
}

func TestAnchorsAndAliasesWork(t *testing.T) {
	wf := mustParse(t, `
name: w
params: {p: x}
tasks:
  - id: a
    type: shell
    command: [env]
    env: &common {A: "1", B: "{{ .params.p }}"}
  - id: b
    type: shell
    command: [env]
    env: *common
`)
	if wf.Tasks[1].Shell.Env["B"] != "{{ .params.p }}" {
		t.Errorf("alias not followed: %v", wf.Tasks[1].Shell.Env)
	}
}

func TestLimits(t *testing.T) {
	bomb := "name: w\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 8; i++ {
		cur := fmt.Sprintf("b%d", i)
		bomb += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", cur, cur, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = cur
	}
	bomb += "tasks: [{id: a, type: noop}]\n"
	deep := "name: w\ntasks: [{id: a, type: shell, command: [echo], env: {A: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}}]\n"
	tasks := "name: w\ntasks:\n" + strings.Repeat("  - {id: a, type: noop}\n", 11)
	cases := []struct {
		name string
		src  string
		lim  Limits
		want string
	}{
		{"file size", "name: w\ntasks: [{id: a, type: noop}]\n", Limits{MaxFileBytes: 10}, "w.yaml: file is larger than the limit of 10 bytes"},
		{"alias bomb", bomb, Limits{}, "w.yaml:2:17: document expands to more than 1000000 YAML nodes (aliases count each time they are used)"},
		{"self-referencing anchor", "name: w\nx: &a [*a]\ntasks: [{id: a, type: noop}]\n", Limits{}, "w.yaml:2:8: nesting is deeper than the limit of 32 levels"},
		{"depth", deep, Limits{}, "w.yaml:2:85: nesting is deeper than the limit of 32 levels"},
		{"task count", tasks, Limits{MaxTasks: 10}, "w.yaml:3:3: tasks: 11 tasks is more than the limit of 10"},
		{"string length", "name: w\ntasks: [{id: a, type: shell, command: [echo, " + strings.Repeat("x", 101) + "]}]\n", Limits{MaxStringBytes: 100},
			`w.yaml:2:46: task "a": command[1]: longer than the limit of 100 bytes`},
		{"url length", "name: w\ntasks: [{id: a, type: http, http: {url: \"http://x/" + strings.Repeat("x", 100) + "\"}}]\n", Limits{MaxURLBytes: 100},
			`w.yaml:2:41: task "a": http.url: longer than the limit of 100 bytes`},
		{"rendered body length", "name: w\nparams: {p: " + strings.Repeat("y", 60) + "}\ntasks: [{id: a, type: http, http: {url: \"http://x\", body: \"{{ .params.p }}{{ .params.p }}\"}}]\n", Limits{MaxBodyBytes: 100},
			`w.yaml:3:59: task "a": http.body: rendering with the default params: template output is longer than 100 bytes`},
		{"printf width bomb", "name: w\nparams: {p: x}\ntasks: [{id: a, type: shell, command: [echo, '{{ printf \"%999999s\" .params.p }}']}]\n", Limits{},
			`w.yaml:3:46: task "a": command[1]: rendering with the default params: template output is longer than 65536 bytes`},
		{"entries", "name: w\ntasks: [{id: a, type: shell, command: [a, b, c, d]}]\n", Limits{MaxEntries: 3}, `w.yaml:2:39: task "a": command: more than 3 entries`},
		{"retries", "name: w\ntasks: [{id: a, type: noop, retries: 11}]\n", Limits{MaxRetries: 10}, `w.yaml:2:38: task "a": retries: 11 is out of range [0, 10]`},
		{"error count", "name: w\ntasks:\n" + strings.Repeat("  - {id: a, type: nop}\n", 5), Limits{MaxErrors: 3},
			"w.yaml:3:19: task \"a\": type: unknown task type \"nop\": use shell, http or noop (did you mean \"noop\"?)\nw.yaml:4:19: task \"a\": type: unknown task type \"nop\": use shell, http or noop (did you mean \"noop\"?)\nw.yaml:5:19: task \"a\": type: unknown task type \"nop\": use shell, http or noop (did you mean \"noop\"?)\nw.yaml:6:19: too many errors (more than 3); stopping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("w.yaml", []byte(c.src), c.lim)
			if err == nil || err.Error() != c.want {
				t.Fatalf("got:\n%v\nwant:\n%s", err, c.want)
			}
			if strings.Contains(c.want, "limit") && !errors.Is(err, ErrLimit) {
				t.Errorf("not an ErrLimit")
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", 2<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(big); !errors.Is(err, ErrLimit) {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestHash(t *testing.T) {
	a, b := Hash([]byte(designExample)), Hash([]byte(designExample+" "))
	if a != Hash([]byte(designExample)) || a == b || len(a) != 64 {
		t.Errorf("hash: %s %s", a, b)
	}
}
