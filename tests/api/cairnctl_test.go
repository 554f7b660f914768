package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

const ctlOK = `
name: ctl-ok
params: {word: nothing}
tasks:
  - id: say
    type: shell
    env: {WORD: "{{ .params.word }}"}
    command: 'echo "said $WORD"'
  - {id: after, type: noop, depends_on: [say]}
`

const ctlFail = `
name: ctl-fail
tasks:
  - id: boom
    type: shell
    command: 'echo "about to fail" >&2; exit 7'
  - {id: after, type: noop, depends_on: [boom]}
`

func TestCairnctl(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	okFile, failFile := filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "fail.yaml")
	for f, y := range map[string]string{okFile: ctlOK, failFile: ctlFail} {
		if err := os.WriteFile(f, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	res := cairnctl(t, c, "apply", okFile, failFile)
	if res.code != 0 || !strings.Contains(res.stdout, "workflow ctl-ok version 1 stored") || !strings.Contains(res.stdout, "workflow ctl-fail version 1 stored") {
		t.Fatalf("%v\nwant exit 0 and both workflows stored", res)
	}

	res = cairnctl(t, c, "run", "--wait", "-p", "word=cairn", "ctl-ok")
	if res.code != 0 {
		t.Fatalf("%v\nwant exit 0 for a run that succeeds", res)
	}
	for _, want := range []string{"SUCCEEDED", "say", "after"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("run --wait output lacks %q:\n%s", want, res.stdout)
		}
	}

	res = cairnctl(t, c, "run", "--wait", "ctl-fail")
	if res.code != 1 {
		t.Fatalf("%v\nwant exit 1 for a run that fails", res)
	}
	for _, want := range []string{"FAILED", "UPSTREAM_FAILED"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("run --wait output of the failing run lacks %q:\n%s", want, res.stdout)
		}
	}

	res = cairnctl(t, c, "runs", "list", "--json")
	if res.code != 0 {
		t.Fatalf("%v\nwant exit 0", res)
	}
	var list cairnv1.ListRunsResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &list); err != nil {
		t.Fatalf("runs list --json is not the API's JSON: %v\n%s", err, res.stdout)
	}
	byWorkflow := map[string]*cairnv1.Run{}
	for _, r := range list.GetRuns() {
		byWorkflow[r.GetWorkflow()] = r
	}
	okRun, failRun := byWorkflow["ctl-ok"], byWorkflow["ctl-fail"]
	if len(list.GetRuns()) != 2 || okRun == nil || failRun == nil {
		t.Fatalf("runs list --json: %d runs %v, want one of ctl-ok and one of ctl-fail", len(list.GetRuns()), byWorkflow)
	}
	if okRun.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED || failRun.GetState() != cairnv1.RunState_RUN_STATE_FAILED {
		t.Errorf("runs list: ctl-ok %s, ctl-fail %s; want SUCCEEDED, FAILED", okRun.GetState(), failRun.GetState())
	}
	if okRun.GetParams()["word"] != "cairn" {
		t.Errorf("run of ctl-ok has params %v, want word=cairn from -p", okRun.GetParams())
	}

	res = cairnctl(t, c, "attempts", "--json", okRun.GetRunId(), "say")
	if res.code != 0 {
		t.Fatalf("%v\nwant exit 0", res)
	}
	var as cairnv1.ListAttemptsResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &as); err != nil {
		t.Fatalf("attempts --json is not the API's JSON: %v\n%s", err, res.stdout)
	}
	if len(as.GetAttempts()) != 1 || !strings.Contains(as.GetAttempts()[0].GetOutput(), "said cairn") {
		t.Errorf("attempts of say: %v, want one attempt whose output says \"said cairn\"", as.GetAttempts())
	}

	res = cairnctl(t, c, "attempts", "--json", failRun.GetRunId(), "boom")
	if err := protojson.Unmarshal([]byte(res.stdout), &as); res.code != 0 || err != nil {
		t.Fatalf("%v\ndecode: %v", res, err)
	}
	if len(as.GetAttempts()) != 1 {
		t.Fatalf("attempts of boom: %d, want 1 (no retries)", len(as.GetAttempts()))
	}
	if a := as.GetAttempts()[0]; a.GetState() != cairnv1.AttemptState_ATTEMPT_STATE_FAILED || a.GetExitCode() != 7 || !strings.Contains(a.GetOutput(), "about to fail") {
		t.Errorf("attempt of boom: state %s exit %d output %q, want FAILED, exit 7, stderr captured", a.GetState(), a.GetExitCode(), a.GetOutput())
	}

	// A bad request is exit 1 with the problem on stderr.
	res = cairnctl(t, c, "runs", "get", "not-a-uuid")
	if res.code != 1 || !strings.Contains(res.stderr, "run_id") || !strings.Contains(res.stderr, "not-a-uuid") {
		t.Errorf("%v\nwant exit 1 naming run_id and the bad value on stderr", res)
	}
	c.CheckInvariants(t)
}
