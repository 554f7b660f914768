package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

func TestMain(m *testing.M) {
	// cairnctl reads its configuration from the environment and the user's files: the tests
	// see neither the developer's CAIRN_* variables nor their ~/.config/cairn.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CAIRN_") {
			_ = os.Unsetenv(k)
		}
	}
	xdg, err := os.MkdirTemp("", "cairnctl-xdg-")
	if err != nil {
		panic(err)
	}
	_ = os.Setenv("XDG_CONFIG_HOME", xdg)
	code := pgtest.Run(m)
	_ = os.RemoveAll(xdg)
	os.Exit(code)
}

// runJSON runs a cluster command with --json against addr and decodes stdout.
func runJSON(t *testing.T, addr string, wantCode int, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := run(t, append(args, "--json", "--addr", addr)...)
	if code != wantCode {
		t.Fatalf("cairnctl %v: exit %d, want %d; stderr:\n%s", args, code, wantCode, errOut)
	}
	if wantCode != ExitOK && out == "" {
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("cairnctl %v: stdout is not JSON: %v\n%s", args, err, out)
	}
	return m
}

func TestClusterCommands(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	t.Setenv("CAIRN_TOKEN", gatewaytest.AdminToken)
	addr := c.GRPCAddr
	examples, _ := filepath.Glob("../../../../examples/*.yaml")
	if len(examples) < 3 {
		t.Fatalf("found %d examples", len(examples))
	}

	// apply: every example is stored; applying again changes nothing.
	code, out, errOut := run(t, append([]string{"apply", "--addr", addr}, examples...)...)
	if code != ExitOK || strings.Count(out, " stored") != len(examples) {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	m := runJSON(t, addr, ExitOK, "apply", examples[0])
	if m["created"] != false {
		t.Errorf("re-apply: %v", m)
	}
	// A bad file is rejected with positions, naming the file, exit 1.
	p := writeFile(t, "bad.yaml", bad)
	code, _, errOut = run(t, "apply", "--addr", addr, p)
	if code != ExitFail || !strings.Contains(errOut, p+":4:41: task \"load\"") {
		t.Errorf("apply bad file: exit %d, stderr:\n%s", code, errOut)
	}

	m = runJSON(t, addr, ExitOK, "workflows", "list")
	if ws := m["workflows"].([]any); len(ws) != len(examples) {
		t.Errorf("workflows list: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "workflows", "get", "orders-etl")
	if w := m["workflow"].(map[string]any); w["name"] != "orders-etl" || len(w["tasks"].([]any)) == 0 {
		t.Errorf("workflows get: %v", m)
	}
	if code, out, _ := run(t, "workflows", "get", "orders-etl", "--addr", addr); code != ExitOK || !strings.Contains(out, "TASK") {
		t.Errorf("workflows get (table): exit %d\n%s", code, out)
	}

	// run: idempotency key returns the same run.
	first := runJSON(t, addr, ExitOK, "run", "orders-etl", "--idempotency-key", "k1")
	second := runJSON(t, addr, ExitOK, "run", "orders-etl", "--idempotency-key", "k1")
	id := first["run"].(map[string]any)["run_id"].(string)
	if second["run"].(map[string]any)["run_id"] != id || second["existing"] != true {
		t.Errorf("same idempotency key: %v then %v", first, second)
	}
	m = runJSON(t, addr, ExitOK, "runs", "get", id)
	if m["run_id"] != id || len(m["tasks"].([]any)) == 0 {
		t.Errorf("runs get: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "runs", "list", "--workflow", "orders-etl")
	if len(m["runs"].([]any)) != 1 {
		t.Errorf("runs list: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "attempts", id, "extract")
	if m["attempts"] == nil {
		t.Errorf("attempts: %v", m)
	}
	dl := c.DeadLetter(id, "extract", "orders-etl", model.AttemptError{Attempt: 1, FailureKind: model.FailureTimeout, Error: "too slow"})
	m = runJSON(t, addr, ExitOK, "dlq", "list")
	if dls := m["dead_letters"].([]any); len(dls) != 1 || dls[0].(map[string]any)["id"] != dl {
		t.Errorf("dlq list: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "dlq", "get", dl)
	if m["dead_letter"].(map[string]any)["last_error"] != "too slow" {
		t.Errorf("dlq get: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "runs", "cancel", id, "--reason", "enough")
	if m["state"] != "RUN_STATE_CANCELLED" {
		t.Errorf("runs cancel: %v", m)
	}
	m = runJSON(t, addr, ExitOK, "cluster")
	if cl := m["cluster"].(map[string]any); cl["leader_address"] == "" || cl["epoch"] == "0" {
		t.Errorf("cluster: %v", m)
	}
	if m = runJSON(t, addr, ExitOK, "workers"); m["workers"] == nil {
		t.Errorf("workers: %v", m)
	}

	// Errors go to stderr with the status and the field; the exit code is 1.
	code, out, errOut = run(t, "runs", "get", "not-a-uuid", "--addr", addr)
	if code != ExitFail || out != "" || !strings.Contains(errOut, "invalid argument: run_id: ") {
		t.Errorf("runs get bad id: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = run(t, "runs", "get", "0190e8a5-7c2b-7d3e-8f00-000000000000", "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "not found") {
		t.Errorf("runs get unknown: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, "runs", "frobnicate", "--addr", addr); code != ExitUsage {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}

// TestRunWait follows runs to their end: the exit code is the run's outcome.
func TestRunWait(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	t.Setenv("CAIRN_TOKEN", gatewaytest.AdminToken)
	apply := writeFile(t, "w.yaml", "name: w\ntasks:\n  - {id: a, type: noop}\n  - {id: b, type: noop, depends_on: [a]}\n")
	if code, _, errOut := run(t, "apply", "--addr", c.GRPCAddr, apply); code != ExitOK {
		t.Fatalf("apply: %s", errOut)
	}
	for _, tc := range []struct {
		final model.RunState
		code  int
	}{{model.RunSucceeded, ExitOK}, {model.RunFailed, ExitFail}} {
		// Drive the run forward once it exists, as a leader and its workers would.
		done := make(chan struct{})
		go func() {
			defer close(done)
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				runs, _, err := c.Store.ListRuns(context.Background(), model.DefaultNamespace, store.RunFilter{Workflow: "w", State: model.RunPending}, store.PageRequest{})
				if err == nil && len(runs) == 1 {
					id := runs[0].ID.String()
					c.Progress(id, map[string]model.TaskState{"a": model.TaskSucceeded})
					time.Sleep(50 * time.Millisecond)
					c.Finish(id, tc.final, "")
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		code, out, errOut := run(t, "run", "w", "--wait", "--addr", c.GRPCAddr)
		<-done
		if code != tc.code {
			t.Errorf("run --wait ending %s: exit %d, want %d\n%s\n%s", tc.final, code, tc.code, out, errOut)
		}
		if !strings.Contains(out, "RUNNING") || !strings.Contains(out, string(tc.final)) || !strings.Contains(out, "TASK") {
			t.Errorf("run --wait ending %s: progress or summary missing:\n%s", tc.final, out)
		}
	}
	// No gateway: a clear error, exit 1.
	code, _, errOut := run(t, "cluster", "--addr", "127.0.0.1:1")
	if code != ExitFail || !strings.Contains(errOut, "cannot reach the gateway") {
		t.Errorf("no gateway: exit %d, stderr %q", code, errOut)
	}
}
