package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const etlYAML = `name: etl
description: test workflow
params: {day: "2026-01-01"}
tasks:
  - {id: extract, type: noop}
  - {id: load, type: noop, depends_on: [extract], retries: 2}
`

type httpResult struct {
	code   int
	header http.Header
	body   []byte
}

func (r httpResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request with the admin token of gatewaytest.
func do(t *testing.T, method, url string, body any) httpResult {
	t.Helper()
	return doWith(t, method, url, body, map[string]string{"Authorization": "Bearer " + gatewaytest.AdminToken})
}

// doWith sends a request with the given headers (a JSON content type is added to a request
// with a body unless headers set one).
func doWith(t *testing.T, method, url string, body any, headers map[string]string) httpResult {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return httpResult{resp.StatusCode, resp.Header, data}
}

// errorMessage is an error body's message; a stream's error is wrapped in {"error": ...}.
func errorMessage(t *testing.T, r httpResult) string {
	m := r.json(t)
	if e, ok := m["error"].(map[string]any); ok {
		m = e
	}
	msg, _ := m["message"].(string)
	return msg
}

func apply(t *testing.T, c *gatewaytest.Cluster, yaml string) {
	t.Helper()
	if r := do(t, "POST", c.HTTPURL+"/v1/workflows", map[string]string{"yaml": yaml}); r.code != 200 {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
}

func startRun(t *testing.T, c *gatewaytest.Cluster, workflow string, body any) string {
	t.Helper()
	r := do(t, "POST", c.HTTPURL+"/v1/workflows/"+workflow+"/runs", body)
	if r.code != 200 {
		t.Fatalf("start run: %d %s", r.code, r.body)
	}
	return r.json(t)["run"].(map[string]any)["run_id"].(string)
}

// TestRoutesReachTheServer sends a request to every route of the OpenAPI document, with path
// parameters the server must reject, and checks each one reached the API (never a routing
// 404/405/501) and was refused with 400 naming the field, or answered.
func TestRoutesReachTheServer(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(cairnv1.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	served := do(t, "GET", c.HTTPURL+"/openapi.json", nil)
	if served.code != 200 || !bytes.Equal(served.body, cairnv1.OpenAPI) {
		t.Fatalf("/openapi.json: %d, body equal to cairnv1.OpenAPI: %v", served.code, bytes.Equal(served.body, cairnv1.OpenAPI))
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	bad := map[string]string{"{name}": "Not_A_Name", "{workflow}": "Not_A_Name", "{run_id}": "not-a-uuid", "{id}": "not-a-uuid",
		"{task_id}": "extract", "{namespace}": "Not_A_Name"}
	field := map[string]string{"{name}": "name", "{workflow}": "workflow", "{run_id}": "run_id", "{id}": "id", "{namespace}": "namespace"}
	routes := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			routes++
			wantField := ""
			for _, p := range param.FindAllString(path, -1) {
				if f := field[p]; f != "" && wantField == "" {
					wantField = f
				}
			}
			url := c.HTTPURL + param.ReplaceAllStringFunc(path, func(p string) string { return bad[p] })
			var body any
			if method == "post" {
				body = "{}"
			}
			r := do(t, strings.ToUpper(method), url, body)
			name := strings.ToUpper(method) + " " + path
			if r.code == 404 || r.code == 405 || r.code == 501 {
				t.Errorf("%s: %d %s (route not served)", name, r.code, r.body)
				continue
			}
			if wantField != "" {
				if r.code != 400 {
					t.Errorf("%s with a bad %s: %d %s, want 400", name, wantField, r.code, r.body)
				} else if msg := errorMessage(t, r); !strings.HasPrefix(msg, wantField+": ") {
					t.Errorf("%s: message %q does not start with the field name %q", name, msg, wantField)
				}
			}
		}
	}
	if routes < 36 {
		t.Fatalf("the OpenAPI document lists %d routes, want at least 36", routes)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := do(t, "GET", c.HTTPURL+p, nil); r.code != 200 {
			t.Errorf("GET %s: %d %s", p, r.code, r.body)
		}
	}
	if r := do(t, "GET", c.HTTPURL+"/metrics", nil); !bytes.Contains(r.body, []byte("rpc_server")) {
		t.Errorf("/metrics has no gRPC server metrics:\n%.2000s", r.body)
	}
}

func TestWorkflowsRunsAndErrors(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{MaxBodyBytes: 64 << 10})
	api := c.HTTPURL + "/v1"

	// Bad YAML: 400 with one ValidationError (line, column) per problem, without the leader.
	calls := c.LeaderCalls()
	r := do(t, "POST", api+"/workflows", map[string]string{"yaml": "name: bad\ntasks:\n  - {id: a, type: noop, depends_on: [b]}\n"})
	if r.code != 400 {
		t.Fatalf("bad YAML: %d %s", r.code, r.body)
	}
	details, _ := r.json(t)["details"].([]any)
	if len(details) == 0 {
		t.Fatalf("bad YAML: no details: %s", r.body)
	}
	d0 := details[0].(map[string]any)
	if d0["@type"] != "type.googleapis.com/cairn.v1.ValidationError" || d0["line"] != float64(3) || d0["column"].(float64) < 1 {
		t.Errorf("bad YAML detail: %v", d0)
	}
	if c.LeaderCalls() != calls {
		t.Errorf("invalid YAML was forwarded to the leader")
	}
	// Validate works locally and reports positions, or the order.
	r = do(t, "POST", api+"/workflows:validate", map[string]string{"yaml": etlYAML, "file": "etl.yaml"})
	if m := r.json(t); r.code != 200 || m["valid"] != true || fmt.Sprint(m["topological_order"]) != "[extract load]" {
		t.Errorf("validate: %d %s", r.code, r.body)
	}
	// Unknown request field: 400.
	if r = do(t, "POST", api+"/workflows", `{"yaml": "x", "yml": "y"}`); r.code != 400 {
		t.Errorf("unknown field: %d %s", r.code, r.body)
	}
	// Body over the cap: 413 with a JSON status.
	big := `{"yaml": "` + strings.Repeat("x", 70<<10) + `"}`
	if r = do(t, "POST", api+"/workflows", big); r.code != 413 || r.json(t)["message"] == nil {
		t.Errorf("large body: %d %s", r.code, r.body)
	}

	apply(t, c, etlYAML)
	r = do(t, "GET", api+"/workflows/etl", nil)
	wf := r.json(t)["workflow"].(map[string]any)
	if r.code != 200 || wf["version"] != "1" || len(wf["tasks"].([]any)) != 2 || wf["yaml"] != etlYAML {
		t.Fatalf("get workflow: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/workflows/etl?version=7", nil); r.code != 404 {
		t.Errorf("unknown version: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/workflows/nope", nil); r.code != 404 {
		t.Errorf("unknown workflow: %d %s", r.code, r.body)
	}
	if r = do(t, "POST", api+"/workflows/nope/runs", "{}"); r.code != 404 {
		t.Errorf("run of unknown workflow: %d %s", r.code, r.body)
	}
	if r = do(t, "POST", api+"/workflows/etl/runs", map[string]any{"params": map[string]string{"dya": "x"}}); r.code != 400 ||
		!strings.HasPrefix(r.json(t)["message"].(string), "params: ") {
		t.Errorf("unknown param: %d %s", r.code, r.body)
	}

	runID := startRun(t, c, "etl", map[string]any{"params": map[string]string{"day": "2026-02-02"}})
	r = do(t, "GET", api+"/runs/"+runID, nil)
	run := r.json(t)["run"].(map[string]any)
	if r.code != 200 || run["state"] != "RUN_STATE_PENDING" || run["params"].(map[string]any)["day"] != "2026-02-02" {
		t.Fatalf("get run: %d %s", r.code, r.body)
	}
	tasks := run["tasks"].([]any)
	if len(tasks) != 2 || tasks[1].(map[string]any)["max_attempts"] != float64(3) || tasks[1].(map[string]any)["type"] != "TASK_TYPE_NOOP" {
		t.Errorf("run tasks: %v", tasks)
	}
	if r = do(t, "GET", api+"/runs/0190e8a5-7c2b-7d3e-8f00-000000000000", nil); r.code != 404 {
		t.Errorf("unknown run: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/runs/"+runID+"/tasks/extract/attempts", nil); r.code != 200 || len(r.json(t)["attempts"].([]any)) != 0 {
		t.Errorf("attempts: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/runs/"+runID+"/tasks/nope/attempts", nil); r.code != 404 {
		t.Errorf("attempts of an unknown task: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/runs?state=RUN_STATE_RUNNING", nil); r.code != 200 || len(r.json(t)["runs"].([]any)) != 0 {
		t.Errorf("runs filtered by state: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/runs?state=BOGUS", nil); r.code != 400 {
		t.Errorf("bad state filter: %d %s", r.code, r.body)
	}
	r = do(t, "POST", api+"/runs/"+runID+":cancel", map[string]string{"reason": "test"})
	if r.code != 200 || r.json(t)["run"].(map[string]any)["state"] != "RUN_STATE_CANCELLED" {
		t.Errorf("cancel: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/runs?state=RUN_STATE_CANCELLED&workflow=etl", nil); r.code != 200 || len(r.json(t)["runs"].([]any)) != 1 {
		t.Errorf("cancelled runs: %d %s", r.code, r.body)
	}

	// Dead letters.
	dl := c.DeadLetter(runID, "load", "etl", model.AttemptError{Attempt: 1, FailureKind: model.FailureExitCode, Error: "exit 3"})
	r = do(t, "GET", api+"/deadletters?run_id="+runID, nil)
	if dls := r.json(t)["dead_letters"].([]any); r.code != 200 || len(dls) != 1 || dls[0].(map[string]any)["last_error"] != "exit 3" ||
		dls[0].(map[string]any)["workflow_version"] != "1" {
		t.Errorf("dead letters: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", api+"/deadletters?run_id=0190e8a5-7c2b-7d3e-8f00-000000000000", nil); len(r.json(t)["dead_letters"].([]any)) != 0 {
		t.Errorf("dead letters of another run: %s", r.body)
	}
	if r = do(t, "GET", api+"/deadletters/"+dl, nil); r.code != 200 || r.json(t)["dead_letter"].(map[string]any)["last_failure_kind"] != "FAILURE_KIND_EXIT_CODE" {
		t.Errorf("dead letter: %d %s", r.code, r.body)
	}
	// The leader's own errors pass through unchanged (the stand-in does not replay yet).
	if r = do(t, "POST", api+"/deadletters/"+dl+":replay", "{}"); r.code != 501 {
		t.Errorf("replay on a leader that does not implement it: %d %s", r.code, r.body)
	}
}

func TestIdempotentStartUnderConcurrency(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	apply(t, c, etlYAML)
	client := cairnv1.NewRunServiceClient(c.Conn())
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	existing := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			resp, err := client.StartRun(context.Background(), &cairnv1.StartRunRequest{Workflow: "etl", IdempotencyKey: "k-1"})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i], existing[i] = resp.GetRun().GetRunId(), resp.GetExisting()
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("start %d returned run %s, start 0 returned %s", i, ids[i], ids[0])
		}
		if !existing[i] {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d calls created a run, want exactly 1", created)
	}
	resp, err := client.ListRuns(context.Background(), &cairnv1.ListRunsRequest{Workflow: "etl"})
	if err != nil || len(resp.GetRuns()) != 1 {
		t.Fatalf("runs after concurrent starts: %v, %v", resp, err)
	}
}

func TestPagination(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{MaxPageSize: 3})
	var names []string
	for i := range 7 {
		name := fmt.Sprintf("wf-%02d", i)
		names = append(names, name)
		apply(t, c, strings.Replace(etlYAML, "name: etl", "name: "+name, 1))
	}
	var got []string
	token := ""
	pages := 0
	for {
		r := do(t, "GET", c.HTTPURL+"/v1/workflows?page_size=100&page_token="+token, nil)
		if r.code != 200 {
			t.Fatalf("list: %d %s", r.code, r.body)
		}
		m := r.json(t)
		ws := m["workflows"].([]any)
		if len(ws) > 3 {
			t.Fatalf("page of %d workflows; max page size is 3", len(ws))
		}
		for _, w := range ws {
			got = append(got, w.(map[string]any)["name"].(string))
		}
		pages++
		token = m["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(names) || pages != 3 {
		t.Errorf("paged %d times through %v; want 3 pages of %v", pages, got, names)
	}
	if r := do(t, "GET", c.HTTPURL+"/v1/workflows?page_token=garbage", nil); r.code != 400 || !strings.HasPrefix(r.json(t)["message"].(string), "page_token: ") {
		t.Errorf("bad token: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", c.HTTPURL+"/v1/workflows?page_size=-1", nil); r.code != 400 {
		t.Errorf("negative page size: %d %s", r.code, r.body)
	}
	// Runs are paged newest first without repeats.
	for range 5 {
		startRun(t, c, "wf-00", "{}")
	}
	seen := map[string]bool{}
	client := cairnv1.NewRunServiceClient(c.Conn())
	req := &cairnv1.ListRunsRequest{PageSize: 2}
	for {
		resp, err := client.ListRuns(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetRuns() {
			if seen[r.GetRunId()] {
				t.Errorf("run %s listed twice", r.GetRunId())
			}
			seen[r.GetRunId()] = true
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("listed %d runs, want 5", len(seen))
	}
}

func TestNoLeader(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{NoLeader: true})
	r := do(t, "GET", c.HTTPURL+"/readyz", nil)
	if r.code != 503 || !strings.Contains(string(r.body), "no scheduler leader") {
		t.Errorf("/readyz without a leader: %d %s", r.code, r.body)
	}
	r = do(t, "POST", c.HTTPURL+"/v1/workflows", map[string]string{"yaml": etlYAML})
	if r.code != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("apply without a leader: %d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body)
	}
	_, err := cairnv1.NewWorkflowServiceClient(c.Conn()).ApplyWorkflow(context.Background(), &cairnv1.ApplyWorkflowRequest{Yaml: etlYAML})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC apply without a leader: %v", err)
	}
	// Reads and validation work without a leader.
	if r = do(t, "GET", c.HTTPURL+"/v1/workflows", nil); r.code != 200 {
		t.Errorf("list without a leader: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", c.HTTPURL+"/v1/cluster", nil); r.code != 200 || r.json(t)["cluster"].(map[string]any)["leader_id"] != "" {
		t.Errorf("cluster without a leader: %d %s", r.code, r.body)
	}

	c.StartLeader()
	apply(t, c, etlYAML)
	r = do(t, "GET", c.HTTPURL+"/v1/cluster", nil)
	cl := r.json(t)["cluster"].(map[string]any)
	if cl["leader_address"] == "" || cl["epoch"] != fmt.Sprint(c.Epoch()) || len(cl["schedulers"].([]any)) != 1 {
		t.Errorf("cluster: %s (epoch %d)", r.body, c.Epoch())
	}
	c.StopLeader()
	if r = do(t, "POST", c.HTTPURL+"/v1/workflows/etl/runs", "{}"); r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("start after the leader left: %d %s", r.code, r.body)
	}
}

func TestWatchRun(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	apply(t, c, etlYAML)
	runID := startRun(t, c, "etl", "{}")
	client := cairnv1.NewRunServiceClient(c.Conn())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := client.WatchRun(ctx, &cairnv1.WatchRunRequest{RunId: runID})
	if err != nil {
		t.Fatal(err)
	}
	c.Progress(runID, map[string]model.TaskState{"extract": model.TaskSucceeded})
	var evs []*cairnv1.RunEvent
	ev, err := stream.Recv() // the stream is live: the first event arrives before the run ends
	if err != nil {
		t.Fatalf("first event: %v", err)
	}
	evs = append(evs, ev.GetEvent())
	c.Finish(runID, model.RunSucceeded, "")
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		evs = append(evs, ev.GetEvent())
	}
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3: %v", len(evs), evs)
	}
	last := evs[len(evs)-1]
	if last.GetRunState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
		t.Errorf("last event %v, want the run's SUCCEEDED", last)
	}
	if !sort.SliceIsSorted(evs, func(i, j int) bool { return evs[i].GetSeq() < evs[j].GetSeq() }) {
		t.Errorf("events out of order: %v", evs)
	}
	// Over REST, after_seq resumes: only the events after it, as NDJSON, and the stream ends.
	r := do(t, "GET", fmt.Sprintf("%s/v1/runs/%s:watch?after_seq=%d", c.HTTPURL, runID, evs[0].GetSeq()), nil)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if r.code != 200 || len(lines) != 2 || !strings.Contains(lines[1], "RUN_STATE_SUCCEEDED") {
		t.Errorf("REST watch after_seq: %d %s", r.code, r.body)
	}
	if r = do(t, "GET", c.HTTPURL+"/v1/runs/0190e8a5-7c2b-7d3e-8f00-000000000000:watch", nil); r.code != 404 {
		t.Errorf("watch of an unknown run: %d %s", r.code, r.body)
	}
}

// TestWorkersLoad: the etcd list carries the leader's view of each worker's load; a worker
// the leader does not have attached is listed unconnected, one only the leader knows (its
// lease gone) is not listed, and without a leader the list still answers, marked load_known
// false.
func TestWorkersLoad(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	for _, w := range []membership.Info{
		{ID: "w-a", Address: "10.0.0.1:1", Pool: "default", Capacity: 4, Started: time.Now()},
		{ID: "w-b", Address: "10.0.0.2:1", Pool: "gpu", Capacity: 2, Started: time.Now()},
		{ID: "w-c", Address: "10.0.0.3:1", Pool: "default", Capacity: 1, Started: time.Now()},
	} {
		reg, err := membership.Register(context.Background(), c.Etcd, w, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Close() })
	}
	seen := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c.SetWorkerLoads(
		&cairnv1.Worker{Id: "w-a", Pool: "default", Capacity: 4, Running: 3, Queued: 1, Connected: true, LastSeenAt: timestamppb.New(seen)},
		&cairnv1.Worker{Id: "w-b", Pool: "gpu", Capacity: 2, Running: 2, Connected: true, Draining: true, LastSeenAt: timestamppb.New(seen)},
		&cairnv1.Worker{Id: "w-z", Pool: "default", Capacity: 8, Running: 5, Connected: true},
	)
	client := cairnv1.NewClusterServiceClient(c.Conn())
	list := func(pool string) *cairnv1.ListWorkersResponse {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := client.ListWorkers(context.Background(), &cairnv1.ListWorkersRequest{Pool: pool})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetWorkers()) >= 2 || time.Now().After(deadline) {
				return resp
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	byID := func(resp *cairnv1.ListWorkersResponse) map[string]*cairnv1.Worker {
		m := map[string]*cairnv1.Worker{}
		for _, w := range resp.GetWorkers() {
			m[w.GetId()] = w
		}
		return m
	}

	resp := list("default")
	ws := byID(resp)
	if !resp.GetLoadKnown() || len(ws) != 2 {
		t.Fatalf("default pool: load_known %v, workers %v; want load_known and [w-a w-c]", resp.GetLoadKnown(), resp.GetWorkers())
	}
	if a := ws["w-a"]; a.GetRunning() != 3 || a.GetQueued() != 1 || !a.GetConnected() || a.GetDraining() ||
		!a.GetLastSeenAt().AsTime().Equal(seen) || a.GetAddress() != "10.0.0.1:1" || a.GetCapacity() != 4 {
		t.Errorf("w-a = %v, want running 3, queued 1, connected, last seen %v, with its etcd address and capacity", a, seen)
	}
	if cw := ws["w-c"]; cw.GetConnected() || cw.GetRunning() != 0 || cw.GetLastSeenAt() != nil {
		t.Errorf("w-c (not attached to the leader) = %v, want unconnected without load", cw)
	}
	if gpu := byID(list(""))["w-b"]; !gpu.GetDraining() || gpu.GetRunning() != 2 {
		t.Errorf("w-b = %v, want draining with 2 running", gpu)
	}

	c.StopLeader()
	resp = list("default")
	if resp.GetLoadKnown() || len(resp.GetWorkers()) != 2 {
		t.Fatalf("without a leader: load_known %v, workers %v; want the etcd list with load_known false", resp.GetLoadKnown(), resp.GetWorkers())
	}
	if a := byID(resp)["w-a"]; a.GetConnected() || a.GetRunning() != 0 {
		t.Errorf("w-a without a leader = %v, want no load", a)
	}
}

func TestWorkers(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	for _, w := range []membership.Info{
		{ID: "w-a", Address: "10.0.0.1:1", Pool: "default", Capacity: 4, Started: time.Now()},
		{ID: "w-b", Address: "10.0.0.2:1", Pool: "gpu", Capacity: 2, Labels: map[string]string{"zone": "b"}, Started: time.Now()},
		{ID: "w-c", Address: "10.0.0.3:1", Pool: "default", Capacity: 1, Started: time.Now()},
	} {
		reg, err := membership.Register(context.Background(), c.Etcd, w, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Close() })
	}
	client := cairnv1.NewClusterServiceClient(c.Conn())
	deadline := time.Now().Add(10 * time.Second)
	var ids []string
	for {
		ids = ids[:0]
		req := &cairnv1.ListWorkersRequest{Pool: "default", PageSize: 1}
		for {
			resp, err := client.ListWorkers(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range resp.GetWorkers() {
				ids = append(ids, w.GetId())
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if fmt.Sprint(ids) == "[w-a w-c]" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fmt.Sprint(ids) != "[w-a w-c]" {
		t.Errorf("default-pool workers %v, want [w-a w-c]", ids)
	}
	cl, err := client.GetCluster(context.Background(), &cairnv1.GetClusterRequest{})
	if err != nil || cl.GetCluster().GetWorkers() != 3 || !cl.GetCluster().GetSchedulers()[0].GetLeader() {
		t.Errorf("cluster: %v, %v", cl, err)
	}
}
