package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// TestTokensEndToEnd, with the real binaries: a token made through the API works within its
// namespace and scopes and finds nothing of another namespace, mutations included (the real
// leader's checks, not only the gateway's); revoking it shuts it out; the audit trail names
// who did what.
func TestTokensEndToEnd(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Gateway: true, Workers: 1, WorkerConcurrency: 2, LogLevel: "info"})
	admin := newREST(t, c)
	var created cairnv1.CreateNamespaceResponse
	admin.post("/v1/namespaces", map[string]string{"namespace": "team-a"}).ok(t, &created)

	// A failed run with a dead letter in default.
	admin.apply(flaky)
	run := admin.start("flaky", map[string]string{"marker": filepath.Join(t.TempDir(), "never")}, "")
	if got := admin.waitRun(run.GetRunId(), 30*time.Second); got.GetState() != cairnv1.RunState_RUN_STATE_FAILED {
		t.Fatalf("flaky ended %s, want FAILED", got.GetState())
	}
	var dls cairnv1.ListDeadLettersResponse
	admin.get("/v1/deadletters?run_id="+run.GetRunId()).ok(t, &dls)
	if len(dls.GetDeadLetters()) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls.GetDeadLetters()))
	}
	dl := dls.GetDeadLetters()[0].GetId()

	// A token of team-a with every scope but admin.
	var tok cairnv1.CreateTokenResponse
	admin.post("/v1/tokens", map[string]any{"name": "team-a-ci", "namespaces": []string{"team-a"},
		"scopes": []string{"workflows:read", "workflows:write", "runs:read", "runs:write", "deadletters:read", "deadletters:write"}}).ok(t, &tok)
	teamA := admin.as(tok.GetSecret())
	var applied cairnv1.ApplyWorkflowResponse
	teamA.post("/v1/namespaces/team-a/workflows", map[string]string{"yaml": greetTeam}).ok(t, &applied)

	// The gateway passed the caller to the leader, which logs it with the mutation.
	if log := c.Schedulers[0].Log(); !strings.Contains(log, `by="team-a-ci via gateway`) {
		t.Errorf("the scheduler's log does not name the token that applied greet (by=team-a-ci):\n%s", c.Schedulers[0].LogTail(20))
	}

	before := dbState(t, c)
	team := "/v1/namespaces/team-a"
	for _, r := range []response{
		teamA.post(team+"/runs/"+run.GetRunId()+":retry", map[string]any{}),
		teamA.post(team+"/deadletters/"+dl+":replay", map[string]any{}),
		teamA.do("DELETE", team+"/deadletters/"+dl, nil),
		teamA.post("/v1/runs/"+run.GetRunId()+":retry", map[string]any{}),
		teamA.post("/v1/deadletters/"+dl+":replay", map[string]any{}),
		teamA.get("/v1/runs/" + run.GetRunId()),
		teamA.get(team + "/runs/" + run.GetRunId()),
		teamA.get(team + "/runs/" + run.GetRunId() + "/tasks/check/attempts"),
		teamA.get(team + "/deadletters/" + dl),
		teamA.get("/v1/workflows/flaky"),
	} {
		if r.Status != http.StatusNotFound {
			t.Errorf("%v\nwant 404: default's resources do not exist for a token of team-a", r)
		}
	}
	sameState(t, "team-a's attempts on default", before, dbState(t, c))

	// Within its scopes and namespace it works; beyond its scopes it is 403.
	if r := teamA.get(team + "/runs"); r.Status != http.StatusOK {
		t.Errorf("%v\nwant 200", r)
	}
	if r := teamA.get("/v1/workers"); r.Status != http.StatusForbidden {
		t.Errorf("%v\nwant 403: no cluster:read", r)
	}

	// Revoked: refused within seconds.
	admin.post("/v1/tokens/"+tok.GetToken().GetId()+":revoke", map[string]any{}).ok(t, &cairnv1.RevokeTokenResponse{})
	deadline := time.Now().Add(5 * time.Second)
	for teamA.get(team+"/runs").Status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a revoked token is still accepted 5 s after its revocation")
		}
		time.Sleep(50 * time.Millisecond) // polling pace
	}

	// The audit trail, through cairnctl.
	res := cairnctl(t, c, "audit", "--token", "team-a-ci")
	if res.code != 0 || !strings.Contains(res.stdout, "WorkflowService/ApplyWorkflow") || !strings.Contains(res.stdout, "NOT_FOUND") {
		t.Errorf("%v\nwant team-a-ci's apply and its refused mutations", res)
	}
}

// TestGatewayRefusesToRunOpen: the gateway binary on an address other than loopback exits
// non-zero, naming what to set: with --insecure (authentication off), and without a TLS
// certificate for its public API (tokens in clear).
func TestGatewayRefusesToRunOpen(t *testing.T) {
	bins := framework.Build(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--insecure", "--http-addr", "0.0.0.0:0"}, []string{"--insecure", "http-addr", "loopback"}},
		{[]string{"--http-addr", "0.0.0.0:0"}, []string{"http-addr", "--public-tls-cert", "--public-tls-key", "--public-plaintext"}},
		{[]string{"--grpc-addr", "[::]:0"}, []string{"grpc-addr", "--public-tls-cert"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bins.Gateway, append(tc.args, "--ops-addr", "")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("cairn-gateway %v: %v, want a non-zero exit\n%s", tc.args, err, out.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("cairn-gateway %v said:\n%s\nwant it to name %s", tc.args, out.String(), w)
			}
		}
	}
}
