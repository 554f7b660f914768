package dag

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseErrors checks the exact message and position of every kind of problem Parse reports.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown dependency with suggestion", `
name: etl
tasks:
  - id: extract
    type: noop
  - id: load
    type: noop
    depends_on: [extrct]
`, `etl.yaml:8:18: task "load": depends_on "extrct" is not a task in this workflow (did you mean "extract"?)`},
		{"cycle", `
name: etl
tasks:
  - {id: a, type: noop, depends_on: [c]}
  - {id: b, type: noop, depends_on: [a]}
  - {id: c, type: noop, depends_on: [b]}
`, `etl.yaml:4:38: task "a": dependency cycle: a → b → c → a`},
		{"two cycles", `
name: etl
tasks:
  - {id: a, type: noop, depends_on: [b]}
  - {id: b, type: noop, depends_on: [a]}
  - {id: c, type: noop, depends_on: [d]}
  - {id: d, type: noop, depends_on: [c]}
`, "etl.yaml:4:38: task \"a\": dependency cycle: a → b → a\netl.yaml:6:38: task \"c\": dependency cycle: c → d → c"},
		{"self dependency", `
name: etl
tasks:
  - {id: a, type: noop, depends_on: [a]}
`, `etl.yaml:4:38: task "a": depends on itself`},
		{"duplicate dependency", `
name: etl
tasks:
  - {id: a, type: noop}
  - {id: b, type: noop, depends_on: [a, a]}
`, `etl.yaml:5:41: task "b": depends_on lists "a" twice`},
		{"duplicate task id", `
name: etl
tasks:
  - {id: a, type: noop}
  - {id: a, type: noop}
`, `etl.yaml:5:10: task "a": duplicate task id "a" (first defined at line 4)`},
		{"no tasks", `
name: etl
tasks: []
`, `etl.yaml:3:8: tasks: a workflow needs at least one task`},
		{"missing tasks and name", `
description: nothing
`, "etl.yaml:2:1: missing required field name\netl.yaml:2:1: missing required field tasks"},
		{"empty file", ``, `etl.yaml: file is empty: a workflow needs at least name: and tasks:`},
		{"top level not a mapping", `[1, 2]`, `etl.yaml:1:1: the workflow must be a mapping, got a list`},
		{"bad workflow name", `
name: Nightly ETL
tasks: [{id: a, type: noop}]
`, `etl.yaml:2:7: name: "Nightly ETL" is not a valid workflow name: use 1-128 characters from a-z, 0-9, '_', '.' and '-', starting with a letter or digit`},
		{"bad task id", `
name: etl
tasks: [{id: Extract_1, type: noop}]
`, `etl.yaml:3:14: id: "Extract_1" is not a valid task id: use 1-128 characters from a-z, 0-9, '_', '.' and '-', starting with a letter or digit`},
		{"name too long", "name: " + strings.Repeat("a", 129) + "\ntasks: [{id: a, type: noop}]\n",
			`etl.yaml:1:7: name: longer than the limit of 128 bytes`},
		{"unknown field with suggestion", `
name: etl
tasks:
  - id: a
    type: shell
    comand: [true]
`, "etl.yaml:4:5: task \"a\": a shell task needs command (a list of arguments, or a string run with /bin/sh -c)\netl.yaml:6:5: task \"a\": unknown field \"comand\" in a task (did you mean \"command\"?)"},
		{"unknown top-level field", `
name: etl
shedule: "0 2 * * *"
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:1: unknown field "shedule" in the workflow (did you mean "schedule"?)`},
		{"duplicate key", `
name: etl
name: etl2
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:1: duplicate field "name" in the workflow (first set at line 2)`},
		{"duplicate env key", `
name: etl
tasks:
  - id: a
    type: shell
    command: [true]
    env: {A: 1, A: 2}
`, `etl.yaml:7:17: task "a": env: duplicate key "A" (first set at line 7)`},
		{"wrong type", `
name: etl
tasks:
  - id: a
    type: noop
    retries: three
`, `etl.yaml:6:14: task "a": retries: expected an integer, got the string "three"`},
		{"retries out of range", `
name: etl
tasks: [{id: a, type: noop, retries: -1}]
`, `etl.yaml:3:38: task "a": retries: -1 is out of range [0, 100]`},
		{"duration without unit", `
name: etl
tasks: [{id: a, type: noop, timeout: 30}]
`, `etl.yaml:3:38: task "a": timeout: 30 has no unit: write a duration such as 30s, 10m or 1h30m`},
		{"bad duration", `
name: etl
tasks: [{id: a, type: noop, timeout: 5x}]
`, `etl.yaml:3:38: task "a": timeout: invalid duration "5x": write a duration such as 30s, 10m or 1h30m`},
		{"negative duration", `
name: etl
tasks: [{id: a, type: noop, timeout: -5s}]
`, `etl.yaml:3:38: task "a": timeout: duration must be positive, got -5s`},
		{"backoff max below initial", `
name: etl
tasks: [{id: a, type: noop, backoff: {initial: 10s, max: 1s}}]
`, `etl.yaml:3:38: task "a": backoff: max 1s is less than initial 10s`},
		{"backoff initial above inherited max", `
name: etl
defaults: {backoff: {initial: 2m}}
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:21: defaults.backoff: initial 2m0s is more than max 1m0s (from the built-in default); set max too`},
		{"backoff bad multiplier and jitter", `
name: etl
tasks: [{id: a, type: noop, backoff: {multiplier: 0.5, jitter: maybe}}]
`, "etl.yaml:3:51: task \"a\": backoff.multiplier: 0.5 is out of range [1, 100]\netl.yaml:3:64: task \"a\": backoff.jitter: expected true or false, got the string \"maybe\""},
		{"bad cron", `
name: etl
schedule: "0 25 * * *"
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:11: schedule: invalid cron expression "0 25 * * *": end of range (25) above maximum (23): 25 (want 5 fields: minute hour day-of-month month day-of-week)`},
		{"cron never fires", `
name: etl
schedule: "0 0 30 2 *"
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:11: schedule: cron expression "0 0 30 2 *" never fires`},
		{"cron with TZ prefix", `
name: etl
schedule: "CRON_TZ=UTC 0 2 * * *"
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:11: schedule: "CRON_TZ=UTC 0 2 * * *": set the time zone with timezone:, not inside the expression`},
		{"cron @every", `
name: etl
schedule: "@every 1h"
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:11: schedule: "@every 1h": @every is not supported (its phase would depend on when the scheduler started); use a cron expression`},
		{"bad timezone", `
name: etl
schedule: "0 2 * * *"
timezone: Mars/Olympus
tasks: [{id: a, type: noop}]
`, `etl.yaml:4:11: timezone: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Paris or UTC)`},
		{"timezone without schedule", `
name: etl
timezone: UTC
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:11: timezone: only applies to a schedule, and this workflow has none`},
		{"unknown trigger rule", `
name: etl
tasks: [{id: a, type: noop}, {id: b, type: noop, depends_on: [a], trigger_rule: all_sucess}]
`, `etl.yaml:3:81: task "b": trigger_rule: unknown trigger rule "all_sucess": use all_success, all_done, one_success, one_failed or none_failed (did you mean "all_success"?)`},
		{"one_success without upstream", `
name: etl
tasks: [{id: a, type: noop, trigger_rule: one_success}]
`, `etl.yaml:3:43: task "a": trigger_rule one_success can never fire: the task has no upstream (add depends_on, or remove trigger_rule)`},
		{"one_failed without upstream", `
name: etl
tasks: [{id: a, type: noop, trigger_rule: one_failed}]
`, `etl.yaml:3:43: task "a": trigger_rule one_failed can never fire: the task has no upstream (add depends_on, or remove trigger_rule)`},
		{"one_failed after root noops", `
name: etl
tasks: [{id: a, type: noop}, {id: b, type: noop, depends_on: [a], trigger_rule: one_failed}]
`, `etl.yaml:3:81: task "b": trigger_rule one_failed can never fire: every upstream task is a noop task without upstream, which always succeeds`},
		{"unknown type", `
name: etl
tasks: [{id: a, type: shel}]
`, `etl.yaml:3:23: task "a": type: unknown task type "shel": use shell, http or noop (did you mean "shell"?)`},
		{"missing type and id", `
name: etl
tasks: [{depends_on: []}]
`, "etl.yaml:3:9: task is missing required field id\netl.yaml:3:9: missing required field type (shell, http or noop)"},
		{"shell without command", `
name: etl
tasks: [{id: a, type: shell}]
`, `etl.yaml:3:9: task "a": a shell task needs command (a list of arguments, or a string run with /bin/sh -c)`},
		{"shell with http", `
name: etl
tasks: [{id: a, type: shell, command: "true", http: {url: "http://x"}}]
`, `etl.yaml:3:47: task "a": http: not allowed on a shell task`},
		{"noop with command", `
name: etl
tasks: [{id: a, type: noop, command: [echo]}]
`, `etl.yaml:3:29: task "a": command: not allowed on a noop task`},
		{"http with env", `
name: etl
tasks: [{id: a, type: http, env: {A: b}, http: {url: "http://x"}}]
`, `etl.yaml:3:29: task "a": env: not allowed on a http task`},
		{"http without http", `
name: etl
tasks: [{id: a, type: http}]
`, `etl.yaml:3:9: task "a": an http task needs http (with at least url)`},
		{"http bad url", `
name: etl
tasks: [{id: a, type: http, http: {url: "ftp://example.com/x"}}]
`, `etl.yaml:3:41: task "a": http.url: "ftp://example.com/x" is not an absolute http or https URL`},
		{"http relative url", `
name: etl
tasks: [{id: a, type: http, http: {url: "/healthz"}}]
`, `etl.yaml:3:41: task "a": http.url: "/healthz" is not an absolute http or https URL`},
		{"http missing url", `
name: etl
tasks: [{id: a, type: http, http: {method: GET}}]
`, `etl.yaml:3:35: task "a": http: missing required field url`},
		{"http lowercase method", `
name: etl
tasks: [{id: a, type: http, http: {url: "http://x", method: post}}]
`, `etl.yaml:3:61: task "a": http.method: unknown method "post" (did you mean "POST"?)`},
		{"http bad method", `
name: etl
tasks: [{id: a, type: http, http: {url: "http://x", method: FETCH}}]
`, `etl.yaml:3:61: task "a": http.method: unknown method "FETCH": use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`},
		{"http expect_status out of range", `
name: etl
tasks: [{id: a, type: http, http: {url: "http://x", expect_status: [200, 600, 200]}}]
`, "etl.yaml:3:74: task \"a\": http.expect_status[1]: 600 is out of range [100, 599]\netl.yaml:3:79: task \"a\": http.expect_status[2]: status 200 is listed twice"},
		{"http body as mapping", `
name: etl
tasks: [{id: a, type: http, http: {url: "http://x", body: {a: 1}}}]
`, `etl.yaml:3:59: task "a": http.body: expected a string, got a mapping (write JSON as a quoted string)`},
		{"http reserved header", `
name: etl
tasks: [{id: a, type: http, http: {url: "http://x", headers: {idempotency-key: x}}}]
`, `etl.yaml:3:63: task "a": http.headers: Idempotency-Key is set by Cairn for every attempt and cannot be overridden`},
		{"template unknown param", `
name: etl
params: {day: "2026-01-01"}
tasks:
  - id: a
    type: shell
    command: [echo, "{{ .params.dya }}"]
`, `etl.yaml:7:21: task "a": command[1]: template: unknown param "dya" (did you mean "day"?)`},
		{"template unknown param in untaken branch", `
name: etl
params: {day: ""}
tasks:
  - id: a
    type: shell
    command: [echo, '{{ if .params.day }}{{ .params.nope }}{{ end }}']
`, `etl.yaml:7:21: task "a": command[1]: template: unknown param "nope"`},
		{"template outside params", `
name: etl
tasks:
  - id: a
    type: http
    http: {url: "http://x/{{ .run_id }}"}
`, `etl.yaml:6:17: task "a": http.url: template: .run_id: templates see only .params`},
		{"template syntax", `
name: etl
params: {p: x}
tasks:
  - id: a
    type: shell
    command: [echo, "{{ .params.p "]
`, `etl.yaml:7:21: task "a": command[1]: template: 1: unclosed action`},
		{"template disallowed function", `
name: etl
params: {p: x}
tasks:
  - id: a
    type: shell
    command: [echo, '{{ index .params "p" }}']
`, `etl.yaml:7:21: task "a": command[1]: template: function "index" is not allowed`},
		{"template range", `
name: etl
params: {p: x}
tasks:
  - id: a
    type: shell
    command: [echo, '{{ range .params }}x{{ end }}']
`, `etl.yaml:7:21: task "a": command[1]: template: range is not allowed; templates only substitute parameters`},
		{"template in script", `
name: etl
params: {day: x}
tasks:
  - id: a
    type: shell
    command: 'echo {{ .params.day }}'
`, `etl.yaml:7:14: task "a": command: templates are not allowed in a shell script string, where a parameter value would become shell code; pass it through env (env: {DAY: "{{ .params.day }}"}) and use "$DAY" in the script`},
		{"template in sh -c argv", `
name: etl
params: {day: x}
tasks:
  - id: a
    type: shell
    command: [/bin/bash, -ec, 'echo {{ .params.day }}']
`, `etl.yaml:7:31: task "a": command[2]: templates are not allowed in the script a shell runs with -c, where a parameter value would become shell code; pass it through env and use "$NAME" in the script`},
		{"template in program", `
name: etl
params: {prog: echo}
tasks:
  - id: a
    type: shell
    command: ['{{ .params.prog }}', hi]
`, `etl.yaml:7:15: task "a": command[0]: the program to run cannot be a template`},
		{"rendered url invalid", `
name: etl
params: {host: "not a host"}
tasks:
  - id: a
    type: http
    http: {url: "{{ .params.host }}/x"}
`, `etl.yaml:7:17: task "a": http.url: rendered with the default params: "not a host/x" is not an absolute http or https URL`},
		{"rendered header with newline", `
name: etl
params: {v: "a\nX-Evil: 1"}
tasks:
  - id: a
    type: http
    http: {url: "http://x", headers: {X-V: "{{ .params.v }}"}}
`, `etl.yaml:7:44: task "a": http.headers.X-V: rendered with the default params: contains a '\n' character, which is not allowed in a header value`},
		{"reserved env name", `
name: etl
tasks:
  - id: a
    type: shell
    command: [env]
    env: {CAIRN_TASK_ID: x, 1BAD: y}
`, "etl.yaml:7:11: task \"a\": env: \"CAIRN_TASK_ID\": names starting with CAIRN_ are reserved for the variables Cairn sets\netl.yaml:7:29: task \"a\": env: \"1BAD\" is not a valid variable name: use A-Z, a-z, 0-9 and '_', not starting with a digit"},
		{"bad param name and null default", `
name: etl
params: {my-param: x, ok: ~}
tasks: [{id: a, type: noop}]
`, "etl.yaml:3:10: params: \"my-param\" is not a valid parameter name: use 1-64 characters from A-Z, a-z, 0-9 and '_', not starting with a digit\netl.yaml:3:27: params.ok: needs a default value (\"\" is fine)"},
		{"empty script", `
name: etl
tasks: [{id: a, type: shell, command: "  "}]
`, `etl.yaml:3:39: task "a": command: the script is empty`},
		{"empty argv", `
name: etl
tasks: [{id: a, type: shell, command: []}]
`, `etl.yaml:3:39: task "a": command: the argument list is empty`},
		{"bad pool", `
name: etl
tasks: [{id: a, type: noop, pool: "GPU pool"}]
`, `etl.yaml:3:35: task "a": pool: "GPU pool" is not a valid pool name: use 1-128 characters from a-z, 0-9, '_', '.' and '-', starting with a letter or digit`},
		{"max_active_tasks zero", `
name: etl
max_active_tasks: 0
tasks: [{id: a, type: noop}]
`, `etl.yaml:3:19: max_active_tasks: 0 is out of range [1, 2147483647]`},
		{"merge key", `
name: etl
base: &b {type: noop}
tasks: [{<<: *b, id: a}]
`, "etl.yaml:3:1: unknown field \"base\" in the workflow\netl.yaml:4:9: task \"a\": missing required field type (shell, http or noop)\netl.yaml:4:10: task \"a\": YAML merge keys (<<) are not supported; write the fields out, or use an alias as a whole value"},
		{"custom tag", `
name: !include other.yaml
tasks: [{id: a, type: noop}]
`, `etl.yaml:2:7: YAML tag !include is not supported`},
		{"syntax error", "name: etl\ntasks: [\n", `etl.yaml:2: YAML syntax: did not find expected node content`},
		{"two documents", "name: etl\ntasks: [{id: a, type: noop}]\n---\nname: b\n", `etl.yaml:3:1: a second YAML document starts here; a workflow file holds exactly one`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := strings.TrimPrefix(c.yaml, "\n")
			if c.yaml != data { // keep the line numbers of the raw literal: it starts with a newline
				data = "\n" + data
			}
			wf, err := Parse("etl.yaml", []byte(data), Limits{})
			if err == nil {
				t.Fatalf("no error; got workflow %q", wf.Name)
			}
			if wf != nil {
				t.Errorf("a workflow was returned with the error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty ErrorList", err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrLimit) {
				t.Errorf("error wraps no kind")
			}
		})
	}
}

func TestErrorsReportAllAndSortByPosition(t *testing.T) {
	src := `name: etl
tasks:
  - {id: b, type: noop, depends_on: [zz]}
  - {id: a, type: noop, retries: x}
  - {id: c, type: noop, depends_on: [b], timeout: 1}
`
	_, err := Parse("etl.yaml", []byte(src), Limits{})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	if len(list) != 3 {
		t.Fatalf("want 3 problems, got %d:\n%v", len(list), err)
	}
	for i, wantLine := range []int{3, 4, 5} {
		if list[i].Line != wantLine {
			t.Errorf("problem %d at line %d, want %d", i, list[i].Line, wantLine)
		}
	}
	if list[0].TaskID != "b" || list[0].Field != "tasks[0].depends_on[0]" || list[0].File != "etl.yaml" {
		t.Errorf("first problem: %+v", *list[0])
	}
	if list[1].Field != "tasks[1].retries" || list[1].Column != 34 {
		t.Errorf("second problem: %+v", *list[1])
	}
}

// TestSuggestionsStayCheap: thousands of misspelt dependencies among thousands of long ids
// must not make error reporting quadratic; suggestions stop once their budget is spent.
func TestSuggestionsStayCheap(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: w\ntasks:\n")
	long := strings.Repeat("x", 120)
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "  - {id: %s%05d, type: noop, depends_on: [%s%05dz]}\n", long, i, long, i)
	}
	_, err := Parse("w.yaml", []byte(b.String()), Limits{MaxErrors: 10_000, MaxFileBytes: 4 << 20})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 5000 {
		t.Fatalf("want 5000 problems, got %d", len(list))
	}
	if !strings.Contains(list[0].Msg, "did you mean") || strings.Contains(list[4999].Msg, "did you mean") {
		t.Errorf("first should have a suggestion and the last not (budget spent):\n%s\n%s", list[0].Msg, list[4999].Msg)
	}
}

// YAML syntax errors name the line the problem is on, not yaml.v3's (often 0-based) context
// line.
func TestSyntaxErrorLines(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		line int
	}{
		{"unclosed flow sequence", "name: broken\ntasks:\n  - id: a\n    type: [noop\n", 4},
		{"unclosed flow mapping", "name: broken\ntasks:\n  - {id: a, type: noop\n", 3},
		{"tab indentation", "name: broken\ntasks:\n  - id: a\n\ttype: noop\n", 4},
		{"bad indentation", "name: broken\ntasks:\n  - id: a\n    type: noop\n   retries: 1\n", 5},
		{"unclosed quote", "name: \"broken\ntasks: []\n", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(c.yaml), Limits{})
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			if got := list[0]; !errors.Is(got, ErrSyntax) || got.Line != c.line {
				t.Fatalf("%v: line %d, want a syntax error on line %d", got, got.Line, c.line)
			}
		})
	}
}
