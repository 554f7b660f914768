package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// greetTeam is `greet` as team-a defines it: the same name, other tasks.
const greetTeam = `
name: greet
tasks:
  - id: wave
    type: shell
    command: 'echo "team-a waves"'
`

// Namespaces end to end, over REST in both path shapes and through cairnctl: one workflow
// name in two namespaces is two workflows that run their own tasks; a run of team-a is 404
// from default and found under /v1/namespaces/team-a/...; cairnctl -n selects the namespace;
// a namespace that holds a workflow cannot be deleted, an empty one can.
func TestNamespacesEndToEnd(t *testing.T) {
	c := newCluster(t)
	api := newREST(t, c)
	team := "/v1/namespaces/team-a"

	var created cairnv1.CreateNamespaceResponse
	api.post("/v1/namespaces", map[string]string{"namespace": "team-a", "description": "Team A"}).ok(t, &created)
	if created.GetNamespace().GetName() != "team-a" || created.GetNamespace().GetCreatedAt() == nil {
		t.Fatalf("create team-a: %v", &created)
	}

	// greet in default (the path without a namespace) and in team-a.
	api.apply(greet)
	var applied cairnv1.ApplyWorkflowResponse
	api.post(team+"/workflows", map[string]string{"yaml": greetTeam}).ok(t, &applied)
	if w := applied.GetWorkflow(); w.GetNamespace() != "team-a" || w.GetVersion() != 1 || !applied.GetCreated() {
		t.Fatalf("apply greet in team-a: %v", &applied)
	}
	defRun := api.start("greet", map[string]string{"who": "default"}, "same-key")
	var started cairnv1.StartRunResponse
	api.post(team+"/workflows/greet/runs", map[string]any{"idempotency_key": "same-key"}).ok(t, &started)
	teamRun := started.GetRun()
	if teamRun.GetNamespace() != "team-a" || teamRun.GetRunId() == defRun.GetRunId() || started.GetExisting() {
		t.Fatalf("start in team-a with default's idempotency key: %v; want a new run of team-a", &started)
	}

	// Each run executes its own namespace's tasks.
	if run := api.waitRun(defRun.GetRunId(), 30*time.Second); run.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
		t.Fatalf("default's run ended %s: %v", run.GetState(), taskStates(run))
	}
	var got cairnv1.GetRunResponse
	deadline := time.Now().Add(30 * time.Second)
	for {
		api.get(team+"/runs/"+teamRun.GetRunId()).ok(t, &got)
		if terminal[got.GetRun().GetState()] || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling pace
	}
	if run := got.GetRun(); run.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED || len(run.GetTasks()) != 1 || run.GetTasks()[0].GetTaskId() != "wave" {
		t.Fatalf("team-a's run: %s with tasks %v; want SUCCEEDED running team-a's wave", run.GetState(), taskStates(run))
	}
	var as cairnv1.ListAttemptsResponse
	api.get(team+"/runs/"+teamRun.GetRunId()+"/tasks/wave/attempts").ok(t, &as)
	if len(as.GetAttempts()) != 1 || !strings.Contains(as.GetAttempts()[0].GetOutput(), "team-a waves") || as.GetAttempts()[0].GetNamespace() != "team-a" {
		t.Errorf("team-a's attempts: %v", as.GetAttempts())
	}

	// From default, team-a's run does not exist; an unknown namespace is named.
	for _, path := range []string{
		"/v1/runs/" + teamRun.GetRunId(),
		"/v1/runs/" + teamRun.GetRunId() + "/tasks/wave/attempts",
		"/v1/runs/" + teamRun.GetRunId() + ":watch",
		"/v1/namespaces/default/runs/" + teamRun.GetRunId(),
	} {
		// (A stream's error body is {"error": {...}}: look for the run id in the body.)
		if r := api.get(path); r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), teamRun.GetRunId()) {
			t.Errorf("%v; want 404 naming the run", r)
		}
	}
	if st := api.get("/v1/namespaces/nope/runs").failed(t, http.StatusNotFound); !strings.Contains(st.Message, "namespace nope") {
		t.Errorf("runs of an unknown namespace: message %q does not name it", st.Message)
	}
	// Watch in the namespaced shape streams team-a's history to the end.
	w := api.get(team + "/runs/" + teamRun.GetRunId() + ":watch")
	if lines := strings.Split(strings.TrimSpace(string(w.Body)), "\n"); w.Status != http.StatusOK || !strings.Contains(lines[len(lines)-1], "RUN_STATE_SUCCEEDED") {
		t.Errorf("watch of team-a's run: %v", w)
	}

	// cairnctl: -n / --namespace select the namespace.
	res := cairnctl(t, c, "-n", "team-a", "runs", "list", "--json")
	var list cairnv1.ListRunsResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &list); res.code != 0 || err != nil {
		t.Fatalf("%v\ndecode: %v", res, err)
	}
	if len(list.GetRuns()) != 1 || list.GetRuns()[0].GetRunId() != teamRun.GetRunId() {
		t.Errorf("cairnctl -n team-a runs list: %v; want only team-a's run", list.GetRuns())
	}
	if res := cairnctl(t, c, "runs", "get", teamRun.GetRunId()); res.code != 1 || !strings.Contains(res.stderr, "not found") {
		t.Errorf("%v\nwant exit 1: team-a's run is not found in default", res)
	}
	if res := cairnctl(t, c, "runs", "get", "--namespace", "team-a", teamRun.GetRunId()); res.code != 0 || !strings.Contains(res.stdout, "team-a/greet") {
		t.Errorf("%v\nwant exit 0 and the run shown as team-a/greet", res)
	}
	if res := cairnctl(t, c, "namespaces", "list"); res.code != 0 || !strings.Contains(res.stdout, "team-a") || !strings.Contains(res.stdout, "default") {
		t.Errorf("%v\nwant both namespaces listed", res)
	}
	if res := cairnctl(t, c, "namespaces", "delete", "team-a"); res.code != 1 || !strings.Contains(res.stderr, "still holds 1 workflow, 1 run") {
		t.Errorf("%v\nwant exit 1 naming what team-a holds", res)
	}
	if res := cairnctl(t, c, "namespaces", "create", "scratch"); res.code != 0 {
		t.Fatalf("%v", res)
	}
	if res := cairnctl(t, c, "namespaces", "delete", "scratch"); res.code != 0 {
		t.Errorf("%v\nwant the empty namespace deleted", res)
	}
	api.get("/v1/namespaces/scratch").failed(t, http.StatusNotFound)

	// In PostgreSQL: each run and workflow in its namespace, nothing orphaned.
	if n := count(t, c, `SELECT count(*) FROM runs WHERE id = $1 AND namespace = 'team-a'`, teamRun.GetRunId()); n != 1 {
		t.Errorf("team-a's run is stored in team-a: %d rows", n)
	}
	if n := count(t, c, `SELECT count(*) FROM workflows WHERE name = 'greet'`); n != 2 {
		t.Errorf("%d workflows named greet, want one per namespace", n)
	}
	if n := count(t, c, `SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM namespaces n WHERE n.name = r.namespace)`); n != 0 {
		t.Errorf("%d runs in a namespace that does not exist", n)
	}
	c.CheckInvariants(t)
}
