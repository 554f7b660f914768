package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// newCluster starts one scheduler, one worker and the gateway.
func newCluster(t *testing.T) *framework.Cluster {
	t.Helper()
	return framework.NewCluster(t, framework.Options{Gateway: true, Workers: 1, WorkerConcurrency: 2})
}

// rest is a client of the gateway's REST API.
type rest struct {
	t     *testing.T
	base  string
	hc    *http.Client
	token string // the secret sent as Bearer; framework.AdminToken unless as() chose another
}

// as returns a client of the same gateway that calls with another token.
func (r *rest) as(secret string) *rest {
	c := *r
	c.token = secret
	return &c
}

func newREST(t *testing.T, c *framework.Cluster) *rest {
	return &rest{t: t, base: c.GatewayURL(), hc: &http.Client{Timeout: 30 * time.Second, Transport: transport(c, 0)}, token: framework.AdminToken}
}

// transport is an HTTP transport for the gateway's REST API: TLS verified against the
// cluster's CA (unless the cluster runs insecure).
func transport(c *framework.Cluster, idle int) *http.Transport {
	tr := &http.Transport{MaxIdleConnsPerHost: idle, ForceAttemptHTTP2: true}
	if c.PKI != nil {
		tr.TLSClientConfig = c.PKI.PublicTLS()
	}
	return tr
}

// response is one HTTP answer, read whole.
type response struct {
	req    string // "METHOD path", for messages
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	body := string(r.Body)
	if len(body) > 2000 {
		body = body[:2000] + "…"
	}
	return fmt.Sprintf("%s → %d %s", r.req, r.Status, body)
}

// do sends one request; a nil body sends none.
func (r *rest) do(method, path string, body []byte) response {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{req: method + " " + path, Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// post sends v as JSON (a string or []byte is sent as is).
func (r *rest) post(path string, v any) response {
	r.t.Helper()
	var body []byte
	switch v := v.(type) {
	case string:
		body = []byte(v)
	case []byte:
		body = v
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			r.t.Fatalf("POST %s: marshal: %v", path, err)
		}
	}
	return r.do(http.MethodPost, path, body)
}

func (r *rest) get(path string) response {
	r.t.Helper()
	return r.do(http.MethodGet, path, nil)
}

// ok fails t unless the answer is 200, and decodes it into m.
func (r response) ok(t *testing.T, m proto.Message) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	if m == nil {
		return
	}
	if err := protojson.Unmarshal(r.Body, m); err != nil {
		t.Fatalf("%v: decode %T: %v", r, m, err)
	}
}

// apiStatus is the google.rpc.Status body of an error answer.
type apiStatus struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details"`
}

// failed fails t unless the answer has HTTP status want and a google.rpc.Status body, and
// returns that body.
func (r response) failed(t *testing.T, want int) apiStatus {
	t.Helper()
	if r.Status != want {
		t.Errorf("%v; want %d", r, want)
	}
	var st apiStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Errorf("%v: the body is not a google.rpc.Status: %v", r, err)
	}
	return st
}

// applyREST stores a workflow over REST and returns its name and version.
func (r *rest) apply(yaml string) (string, int64) {
	r.t.Helper()
	var resp cairnv1.ApplyWorkflowResponse
	r.post("/v1/workflows", map[string]string{"yaml": yaml}).ok(r.t, &resp)
	return resp.GetWorkflow().GetName(), resp.GetWorkflow().GetVersion()
}

// start starts a run over REST and returns it.
func (r *rest) start(workflow string, params map[string]string, key string) *cairnv1.Run {
	r.t.Helper()
	body := map[string]any{"params": params}
	if key != "" {
		body["idempotency_key"] = key
	}
	var resp cairnv1.StartRunResponse
	r.post("/v1/workflows/"+workflow+"/runs", body).ok(r.t, &resp)
	if resp.GetRun().GetRunId() == "" {
		r.t.Fatalf("start run of %s: empty run id", workflow)
	}
	return resp.GetRun()
}

// run reads a run over REST.
func (r *rest) run(id string) *cairnv1.Run {
	r.t.Helper()
	var resp cairnv1.GetRunResponse
	r.get("/v1/runs/"+id).ok(r.t, &resp)
	return resp.GetRun()
}

var terminal = map[cairnv1.RunState]bool{
	cairnv1.RunState_RUN_STATE_SUCCEEDED: true,
	cairnv1.RunState_RUN_STATE_FAILED:    true,
	cairnv1.RunState_RUN_STATE_CANCELLED: true,
}

// waitRun polls GET /v1/runs/{id} until the run is terminal and returns it.
func (r *rest) waitRun(id string, timeout time.Duration) *cairnv1.Run {
	r.t.Helper()
	return r.waitRunState(id, timeout, func(run *cairnv1.Run) bool { return terminal[run.GetState()] }, "terminal")
}

// waitRunState polls GET /v1/runs/{id} until cond holds and returns the run.
func (r *rest) waitRunState(id string, timeout time.Duration, cond func(*cairnv1.Run) bool, what string) *cairnv1.Run {
	r.t.Helper()
	var run *cairnv1.Run
	deadline := time.Now().Add(timeout)
	for {
		run = r.run(id)
		if cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("run %s not %s within %v over REST; last seen:\n%s", id, what, timeout, protojson.Format(run))
		}
		time.Sleep(50 * time.Millisecond) // polling pace
	}
}

// attempts lists a task's attempts over REST.
func (r *rest) attempts(runID, taskID string) []*cairnv1.Attempt {
	r.t.Helper()
	var resp cairnv1.ListAttemptsResponse
	r.get("/v1/runs/"+runID+"/tasks/"+taskID+"/attempts").ok(r.t, &resp)
	return resp.GetAttempts()
}

// taskStates maps a run's task ids to their states.
func taskStates(run *cairnv1.Run) map[string]cairnv1.TaskState {
	out := map[string]cairnv1.TaskState{}
	for _, tr := range run.GetTasks() {
		out[tr.GetTaskId()] = tr.GetState()
	}
	return out
}

// tables are the tables of orchestration state a bad request must leave alone
// (leadership is the leader's own bookkeeping).
var tables = []string{"namespaces", "workflows", "workflow_versions", "schedules", "runs", "task_runs", "attempts", "dead_letters", "events"}

// dbState fingerprints every row of the state tables: per table, the row count and an MD5
// over all rows' text, so an update is seen as well as an insert or delete.
func dbState(t *testing.T, c *framework.Cluster) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	for _, tbl := range tables {
		var s string
		q := fmt.Sprintf(`SELECT count(*)::text || ' rows, md5 ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM %s x`, tbl)
		if err := c.Pool.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatalf("fingerprint %s: %v", tbl, err)
		}
		out[tbl] = s
	}
	return out
}

// sameState reports every table whose fingerprint changed.
func sameState(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for _, tbl := range tables {
		if before[tbl] != after[tbl] {
			t.Errorf("%s changed table %s: before %s, after %s", what, tbl, before[tbl], after[tbl])
		}
	}
}

// count runs one SELECT count(*) query.
func count(t *testing.T, c *framework.Cluster, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := c.Pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

var (
	cairnctlOnce sync.Once
	cairnctlDir  string
	cairnctlBin  string
	cairnctlErr  error
)

// buildCairnctl compiles cairnctl once per test binary.
func buildCairnctl(t *testing.T) string {
	t.Helper()
	cairnctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-api-bin-")
		if err != nil {
			cairnctlErr = err
			return
		}
		cairnctlDir = dir
		bin := filepath.Join(dir, "cairnctl")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/cairn-io/cairn/services/cairnctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			cairnctlErr = fmt.Errorf("build cairnctl: %w\n%s", err, out)
			return
		}
		cairnctlBin = bin
	})
	if cairnctlErr != nil {
		t.Fatalf("%v", cairnctlErr)
	}
	return cairnctlBin
}

func removeCairnctl() {
	if cairnctlDir != "" {
		_ = os.RemoveAll(cairnctlDir)
	}
}

// ctlResult is one cairnctl invocation.
type ctlResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r ctlResult) String() string {
	return fmt.Sprintf("cairnctl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cairnctl runs the binary against the cluster's gateway (CAIRN_ADDR, and CAIRN_CA_FILE for
// its TLS) and waits for it. It sees no configuration file of the developer's.
func cairnctl(t *testing.T, c *framework.Cluster, args ...string) ctlResult {
	t.Helper()
	bin := buildCairnctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CAIRN_ADDR="+c.Gateway.GRPCAddr, "CAIRN_TOKEN="+framework.AdminToken, "XDG_CONFIG_HOME="+t.TempDir())
	if c.PKI != nil {
		env = append(env, "CAIRN_CA_FILE="+c.PKI.CAFile())
	}
	cmd.Env = env
	cmd.Dir = t.TempDir() // no .cairn/cairnctl.json
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ctlResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.code = exit.ExitCode()
	default:
		t.Fatalf("cairnctl %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return res
}
