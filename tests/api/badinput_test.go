package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// yamlBody wraps a workflow file in an ApplyWorkflow body.
func yamlBody(y string) map[string]string { return map[string]string{"yaml": y} }

// badInput is one request that must be refused.
type badInput struct {
	name   string
	method string
	path   string
	body   any // nil: no body; string/[]byte sent as is; else JSON
	status int
	// code is the google.rpc.Status code expected in the body; 0 skips the check.
	code int
	// want are substrings the message must hold (the field and the problem).
	want []string
	// position: the details must hold a cairn.v1.ValidationError with line and column.
	position bool
	// line: the details must hold a cairn.v1.ValidationError with a line. YAML syntax errors
	// have no column: go.yaml.in/yaml/v3 reports only a line for them (column 0 = unknown).
	line bool
}

const (
	codeInvalidArgument    = 3
	codeNotFound           = 5
	codeFailedPrecondition = 9
	codeResourceExhausted  = 8
)

// TestBadInputs sends every bad input of docs/api.md and docs/dag-format.md: each gets a
// 4xx whose message names the problem, and PostgreSQL is left exactly as it was.
func TestBadInputs(t *testing.T) {
	c := newCluster(t)
	api := newREST(t, c)
	api.apply(greet)
	api.apply(once) // a second workflow, so that listing them has a second page
	finished := api.start("greet", map[string]string{"who": "x"}, "")
	if run := api.waitRun(finished.GetRunId(), 30*time.Second); run.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
		t.Fatalf("set-up run ended %s, want SUCCEEDED", run.GetState())
	}
	finishedID := finished.GetRunId()
	unknownRun := uuid.NewString()

	// A valid file just over 1 MiB (a long description), and a body over 4 MiB.
	bigYAML := "name: big\ndescription: " + strings.Repeat("x", 1<<20) + "\ntasks:\n  - {id: a, type: noop}\n"
	hugeBody := `{"yaml": "` + strings.Repeat("x", 4<<20+1) + `"}`

	cases := []badInput{
		{name: "malformed JSON", method: "POST", path: "/v1/workflows", body: `{"yaml": "name: x`,
			status: 400, code: codeInvalidArgument, want: []string{"unexpected EOF"}},
		{name: "unknown JSON field", method: "POST", path: "/v1/workflows", body: `{"yaml": "name: x", "colour": "red"}`,
			status: 400, code: codeInvalidArgument, want: []string{"colour"}},
		// The message is protojson's ("syntax error (line 1:12): unexpected token ["): it gives
		// the position, not the field.
		{name: "JSON of the wrong type", method: "POST", path: "/v1/workflows/greet/runs", body: `{"params": ["who"]}`,
			status: 400, code: codeInvalidArgument, want: []string{"1:12"}},
		{name: "empty YAML", method: "POST", path: "/v1/workflows", body: yamlBody(""),
			status: 400, code: codeInvalidArgument, want: []string{"yaml", "required"}},
		{name: "YAML syntax error", method: "POST", path: "/v1/workflows", body: yamlBody("name: broken\ntasks:\n  - id: a\n    type: [noop\n"),
			status: 400, code: codeInvalidArgument, want: []string{"yaml", "YAML syntax"}, line: true},
		{name: "unknown YAML field", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: typo\ntasks:\n  - id: a\n    type: shell\n    command: 'true'\n    retires: 3\n"),
			status: 400, code: codeInvalidArgument, want: []string{"retires"}, position: true},
		{name: "unknown task dependency", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: deps\ntasks:\n  - {id: extract, type: noop}\n  - {id: load, type: noop, depends_on: [extrct]}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"extrct", "load"}, position: true},
		{name: "cycle", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: loop\ntasks:\n  - {id: a, type: noop, depends_on: [c]}\n  - {id: b, type: noop, depends_on: [a]}\n  - {id: c, type: noop, depends_on: [b]}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"cycle", "→"}, position: true},
		{name: "self dependency", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: selfish\ntasks:\n  - {id: a, type: noop, depends_on: [a]}\n"),
			status: 400, code: codeInvalidArgument, want: []string{`"a"`}, position: true},
		{name: "duplicate task id", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: dup\ntasks:\n  - {id: a, type: noop}\n  - {id: a, type: noop}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"duplicate", `"a"`}, position: true},
		{name: "bad workflow name", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: Bad_Name\ntasks:\n  - {id: a, type: noop}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"Bad_Name"}, position: true},
		{name: "unknown task type", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: typed\ntasks:\n  - {id: a, type: python}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"python"}, position: true},
		{name: "bare-number duration", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: slow\ntasks:\n  - {id: a, type: shell, command: 'true', timeout: 30}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"timeout"}, position: true},
		{name: "bad cron schedule", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: cronny\nschedule: \"61 * * * *\"\ntasks:\n  - {id: a, type: noop}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"schedule"}, position: true},
		{name: "template of an undeclared param", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: tmpl\nparams: {day: x}\ntasks:\n  - {id: a, type: shell, command: [echo, '{{ .params.dya }}']}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"dya"}, position: true},
		{name: "template in a shell script", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: inject\nparams: {day: x}\ntasks:\n  - {id: a, type: shell, command: 'echo {{ .params.day }}'}\n"),
			status: 400, code: codeInvalidArgument, want: []string{"template"}, position: true},
		{name: "reference to a secret the namespace lacks", method: "POST", path: "/v1/workflows",
			body:   yamlBody("name: sec\ntasks:\n  - {id: a, type: shell, command: [env], env: {TOKEN: '{{ secret \"tok\" }}'}}\n"),
			status: 400, code: codeInvalidArgument, want: []string{`secret "tok" is not defined in namespace default`, `task "a"`}, position: true},
		{name: "YAML over 1 MiB", method: "POST", path: "/v1/workflows", body: yamlBody(bigYAML),
			status: 400, code: codeInvalidArgument, want: []string{"limit"}},
		{name: "body over 4 MiB", method: "POST", path: "/v1/workflows", body: hugeBody,
			status: 413},
		{name: "start of an unknown workflow", method: "POST", path: "/v1/workflows/nosuch/runs", body: `{}`,
			status: 404, code: codeNotFound, want: []string{"nosuch"}},
		{name: "unknown param on StartRun", method: "POST", path: "/v1/workflows/greet/runs", body: `{"params": {"whom": "x"}}`,
			status: 400, code: codeInvalidArgument, want: []string{"params", "whom"}},
		{name: "idempotency key too long", method: "POST", path: "/v1/workflows/greet/runs",
			body:   map[string]any{"idempotency_key": strings.Repeat("k", 10000)},
			status: 400, code: codeInvalidArgument, want: []string{"idempotency_key"}},
		{name: "unknown workflow", method: "GET", path: "/v1/workflows/nosuch",
			status: 404, code: codeNotFound, want: []string{"nosuch"}},
		{name: "bad run id", method: "GET", path: "/v1/runs/not-a-uuid",
			status: 400, code: codeInvalidArgument, want: []string{"run_id", "not-a-uuid"}},
		{name: "bad run id on cancel", method: "POST", path: "/v1/runs/not-a-uuid:cancel", body: `{}`,
			status: 400, code: codeInvalidArgument, want: []string{"run_id", "not-a-uuid"}},
		{name: "unknown run", method: "GET", path: "/v1/runs/" + unknownRun,
			status: 404, code: codeNotFound, want: []string{unknownRun}},
		{name: "attempts of an unknown run", method: "GET", path: "/v1/runs/" + unknownRun + "/tasks/a/attempts",
			status: 404, code: codeNotFound, want: []string{unknownRun}},
		{name: "attempts of an unknown task", method: "GET", path: "/v1/runs/" + finishedID + "/tasks/nosuch/attempts",
			status: 404, code: codeNotFound, want: []string{"nosuch"}},
		{name: "cancel of an unknown run", method: "POST", path: "/v1/runs/" + unknownRun + ":cancel", body: `{}`,
			status: 404, code: codeNotFound, want: []string{unknownRun}},
		// FAILED_PRECONDITION is HTTP 400 in google.rpc's mapping, which grpc-gateway follows;
		// any 4xx is accepted, the code in the body is what is checked.
		{name: "cancel of a finished run", method: "POST", path: "/v1/runs/" + finishedID + ":cancel", body: `{}`,
			code: codeFailedPrecondition, want: []string{finishedID, "SUCCEEDED"}},
		{name: "negative page_size", method: "GET", path: "/v1/runs?page_size=-1",
			status: 400, code: codeInvalidArgument, want: []string{"page_size"}},
		{name: "bad page token", method: "GET", path: "/v1/runs?page_token=bm90LWEtdG9rZW4",
			status: 400, code: codeInvalidArgument, want: []string{"page_token"}},
		{name: "page token of another listing", method: "GET", path: "/v1/runs?page_token=" + workflowsPageToken(t, api),
			status: 400, code: codeInvalidArgument, want: []string{"page_token"}},
		{name: "unknown state filter", method: "GET", path: "/v1/runs?state=RUN_STATE_SLEEPING",
			status: 400, code: codeInvalidArgument, want: []string{"RUN_STATE_SLEEPING"}},
		{name: "bad dead letter id", method: "GET", path: "/v1/deadletters/not-a-uuid",
			status: 400, code: codeInvalidArgument, want: []string{"id", "not-a-uuid"}},
		{name: "unknown dead letter", method: "GET", path: "/v1/deadletters/" + unknownRun,
			status: 404, code: codeNotFound, want: []string{unknownRun}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dbState(t, c)
			var r response
			if tc.body == nil {
				r = api.do(tc.method, tc.path, nil)
			} else {
				r = api.post(tc.path, tc.body)
			}
			t.Logf("%v", r)
			checkRefused(t, r, tc)
			sameState(t, tc.name, before, dbState(t, c))
		})
	}
	t.Run("YAML syntax error names its line", func(t *testing.T) {
		// The unclosed flow sequence is on line 4.
		r := api.post("/v1/workflows", yamlBody("name: broken\ntasks:\n  - id: a\n    type: [noop\n"))
		st := r.failed(t, 400)
		if len(st.Details) == 0 {
			t.Fatalf("%v; want a ValidationError", r)
		}
		if line, _ := st.Details[0]["line"].(float64); line != 4 {
			t.Errorf("%v; want line 4", r)
		}
	})
	c.CheckInvariants(t)
}

// checkRefused checks one refusal: a 4xx (the given one when set), a google.rpc.Status body
// with the expected code and a message naming the problem.
func checkRefused(t *testing.T, r response, tc badInput) {
	t.Helper()
	if r.Status < 400 || r.Status >= 500 {
		t.Fatalf("%v; want a 4xx", r)
	}
	if tc.status != 0 && r.Status != tc.status {
		t.Errorf("%v; want %d", r, tc.status)
	}
	if tc.code == 0 {
		return
	}
	var st apiStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("%v: the body is not a google.rpc.Status: %v", r, err)
	}
	if st.Code != tc.code {
		t.Errorf("%v; want gRPC code %d", r, tc.code)
	}
	for _, w := range tc.want {
		if !strings.Contains(st.Message, w) {
			t.Errorf("message %q does not name %q", st.Message, w)
		}
	}
	if tc.position && !hasPosition(st, true) {
		t.Errorf("%v; want a cairn.v1.ValidationError with line and column in details", r)
	}
	if tc.line && !hasPosition(st, false) {
		t.Errorf("%v; want a cairn.v1.ValidationError with a line in details", r)
	}
}

// hasPosition reports whether a status carries a ValidationError with a line and, if
// column is set, a column.
func hasPosition(st apiStatus, column bool) bool {
	for _, d := range st.Details {
		typ, _ := d["@type"].(string)
		line, _ := d["line"].(float64)
		col, _ := d["column"].(float64)
		if strings.HasSuffix(typ, "cairn.v1.ValidationError") && line >= 1 && (col >= 1 || !column) {
			return true
		}
	}
	return false
}

// workflowsPageToken returns a genuine next_page_token of GET /v1/workflows.
func workflowsPageToken(t *testing.T, api *rest) string {
	t.Helper()
	var list cairnv1.ListWorkflowsResponse
	api.get("/v1/workflows?page_size=1").ok(t, &list)
	if list.GetNextPageToken() == "" {
		t.Fatalf("GET /v1/workflows?page_size=1 over %d workflows gave no next_page_token", len(list.GetWorkflows()))
	}
	return list.GetNextPageToken()
}
