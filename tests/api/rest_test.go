package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// greet is a two-task workflow whose shell task prints a param through env.
const greet = `
name: greet
description: say hello
params: {who: nobody}
tasks:
  - id: hello
    type: shell
    env: {WHO: "{{ .params.who }}"}
    command: 'echo "hello, $WHO"; echo "attempt $CAIRN_ATTEMPT of $CAIRN_TASK_ID"'
  - id: done
    type: noop
    depends_on: [hello]
`

func TestRESTApplyRunSucceeds(t *testing.T) {
	c := newCluster(t)
	api := newREST(t, c)

	var applied cairnv1.ApplyWorkflowResponse
	api.post("/v1/workflows", map[string]string{"yaml": greet}).ok(t, &applied)
	if applied.GetWorkflow().GetName() != "greet" || applied.GetWorkflow().GetVersion() != 1 || !applied.GetCreated() {
		t.Errorf("apply: got workflow %s version %d created=%v, want greet version 1 created",
			applied.GetWorkflow().GetName(), applied.GetWorkflow().GetVersion(), applied.GetCreated())
	}
	// The same bytes again are the same version.
	var again cairnv1.ApplyWorkflowResponse
	api.post("/v1/workflows", map[string]string{"yaml": greet}).ok(t, &again)
	if again.GetWorkflow().GetVersion() != 1 || again.GetCreated() {
		t.Errorf("re-apply of identical YAML: version %d created=%v, want version 1 not created", again.GetWorkflow().GetVersion(), again.GetCreated())
	}
	var got cairnv1.GetWorkflowResponse
	api.get("/v1/workflows/greet").ok(t, &got)
	if n := len(got.GetWorkflow().GetTasks()); n != 2 {
		t.Errorf("GET /v1/workflows/greet: %d tasks, want 2", n)
	}

	run := api.start("greet", map[string]string{"who": "world"}, "")
	if run.GetWorkflow() != "greet" || run.GetParams()["who"] != "world" {
		t.Errorf("started run: workflow %q params %v, want greet with who=world", run.GetWorkflow(), run.GetParams())
	}
	run = api.waitRun(run.GetRunId(), 30*time.Second)
	if run.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
		t.Fatalf("run %s ended %s, want SUCCEEDED; tasks %v", run.GetRunId(), run.GetState(), taskStates(run))
	}
	for id, st := range taskStates(run) {
		if st != cairnv1.TaskState_TASK_STATE_SUCCEEDED {
			t.Errorf("task %s is %s, want SUCCEEDED", id, st)
		}
	}
	if run.GetFinishedAt() == nil || run.GetStartedAt() == nil {
		t.Errorf("succeeded run lacks started_at/finished_at: %v / %v", run.GetStartedAt(), run.GetFinishedAt())
	}

	as := api.attempts(run.GetRunId(), "hello")
	if len(as) != 1 {
		t.Fatalf("task hello has %d attempts, want 1: %v", len(as), as)
	}
	a := as[0]
	if a.GetState() != cairnv1.AttemptState_ATTEMPT_STATE_SUCCEEDED || a.ExitCode == nil || a.GetExitCode() != 0 {
		t.Errorf("attempt: state %s exit %v, want SUCCEEDED exit 0", a.GetState(), a.ExitCode)
	}
	for _, want := range []string{"hello, world", "attempt 1 of hello"} {
		if !strings.Contains(a.GetOutput(), want) {
			t.Errorf("attempt output %q does not contain %q", a.GetOutput(), want)
		}
	}
	if a.GetWorkerId() != c.Workers[0].ID {
		t.Errorf("attempt ran on %q, want %q", a.GetWorkerId(), c.Workers[0].ID)
	}

	// The run is listed, by workflow and by state.
	var list cairnv1.ListRunsResponse
	api.get("/v1/runs?workflow=greet&state=RUN_STATE_SUCCEEDED").ok(t, &list)
	if len(list.GetRuns()) != 1 || list.GetRuns()[0].GetRunId() != run.GetRunId() {
		t.Errorf("GET /v1/runs?workflow=greet&state=RUN_STATE_SUCCEEDED: %v, want just run %s", list.GetRuns(), run.GetRunId())
	}

	checkOpenAPI(t, api)
	c.CheckInvariants(t)
}

// checkOpenAPI reads /openapi.json and checks it is JSON listing every route of docs/api.md.
func checkOpenAPI(t *testing.T, api *rest) {
	t.Helper()
	resp := api.get("/openapi.json")
	if resp.Status != http.StatusOK {
		t.Fatalf("%v; want 200", resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Errorf("/openapi.json Content-Type %q, want JSON", ct)
	}
	var doc struct {
		Swagger string                                `json:"swagger"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(resp.Body, &doc); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	routes := map[string][]string{
		"/v1/workflows":                              {"get", "post"},
		"/v1/workflows:validate":                     {"post"},
		"/v1/workflows/{name}":                       {"get"},
		"/v1/workflows/{workflow}/runs":              {"post"},
		"/v1/runs":                                   {"get"},
		"/v1/runs/{run_id}":                          {"get"},
		"/v1/runs/{run_id}:cancel":                   {"post"},
		"/v1/runs/{run_id}:retry":                    {"post"},
		"/v1/runs/{run_id}/tasks/{task_id}/attempts": {"get"},
		"/v1/runs/{run_id}:watch":                    {"get"},
		"/v1/deadletters":                            {"get"},
		"/v1/deadletters/{id}":                       {"get", "delete"},
		"/v1/deadletters/{id}:replay":                {"post"},
		"/v1/workers":                                {"get"},
		"/v1/cluster":                                {"get"},
	}
	for path, methods := range routes {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("/openapi.json lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}
}
