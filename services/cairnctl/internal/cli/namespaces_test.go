package cli

import (
	"strings"
	"testing"

	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

// cairnctl namespaces, and --namespace / -n / CAIRN_NAMESPACE on the cluster commands.
func TestNamespaceCommands(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	t.Setenv("CAIRN_TOKEN", gatewaytest.AdminToken)
	addr := c.GRPCAddr
	wf := writeFile(t, "w.yaml", "name: w\ntasks:\n  - {id: a, type: noop}\n")

	code, out, errOut := run(t, "namespaces", "create", "team-a", "--description", "Team A", "--addr", addr)
	if code != ExitOK || out != "namespace team-a created\n" {
		t.Fatalf("namespaces create: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "namespaces", "create", "team-a", "--addr", addr); code != ExitFail || !strings.Contains(errOut, "already exists") {
		t.Errorf("create twice: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = run(t, "namespaces", "list", "--addr", addr)
	if code != ExitOK || !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "default") || !strings.Contains(out, "Team A") {
		t.Errorf("namespaces list: exit %d\n%s", code, out)
	}
	if m := runJSON(t, addr, ExitOK, "namespaces", "get", "team-a"); m["namespace"].(map[string]any)["description"] != "Team A" {
		t.Errorf("namespaces get: %v", m)
	}

	// The flag after the command, -n before it, and the environment variable all select it.
	code, out, errOut = run(t, "apply", "--namespace", "team-a", "--addr", addr, wf)
	if code != ExitOK || !strings.Contains(out, "workflow team-a/w version 1 stored") {
		t.Fatalf("apply -n team-a: exit %d\n%s%s", code, out, errOut)
	}
	m := runJSON(t, addr, ExitOK, "-n", "team-a", "run", "w")
	id := m["run"].(map[string]any)["run_id"].(string)
	if m["run"].(map[string]any)["namespace"] != "team-a" {
		t.Errorf("run in team-a: %v", m)
	}
	t.Setenv("CAIRN_NAMESPACE", "team-a")
	if m := runJSON(t, addr, ExitOK, "runs", "get", id); m["namespace"] != "team-a" {
		t.Errorf("runs get with CAIRN_NAMESPACE=team-a: %v", m)
	}
	if m := runJSON(t, addr, ExitOK, "workflows", "list"); len(m["workflows"].([]any)) != 1 {
		t.Errorf("workflows list in team-a: %v", m)
	}
	// The flag beats the environment; default does not see team-a's run.
	code, _, errOut = run(t, "runs", "get", id, "-n", "default", "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "not found") {
		t.Errorf("team-a's run from default: exit %d, stderr %q; want not found", code, errOut)
	}
	code, _, errOut = run(t, "-n", "nope", "runs", "list", "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "namespace nope") {
		t.Errorf("runs list in an unknown namespace: exit %d, stderr %q; want not found naming it", code, errOut)
	}
	if code, _, _ := run(t, "-n"); code != ExitUsage {
		t.Errorf("a leading -n without a name: exit %d, want %d", code, ExitUsage)
	}

	// delete: refused while the namespace holds something, done when empty.
	code, _, errOut = run(t, "namespaces", "delete", "team-a", "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "failed precondition") || !strings.Contains(errOut, "1 workflow") {
		t.Errorf("delete a namespace that holds a workflow: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, "namespaces", "create", "team-b", "--addr", addr); code != ExitOK {
		t.Fatalf("create team-b: %s", errOut)
	}
	if code, out, errOut := run(t, "namespaces", "delete", "team-b", "--addr", addr); code != ExitOK || out != "namespace team-b deleted\n" {
		t.Errorf("delete the empty team-b: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := run(t, "namespaces", "delete", "--addr", addr); code != ExitUsage {
		t.Errorf("delete without a name: exit %d, want %d", code, ExitUsage)
	}
}
