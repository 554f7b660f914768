package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

// setStdin makes `secrets set` read s.
func setStdin(t *testing.T, s string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(s)
	t.Cleanup(func() { stdin = old })
}

// cairnctl secrets: set reads the value from stdin (one trailing newline dropped) or a file,
// never from argv, and no command prints a value; list shows names; delete removes one.
func TestSecretsCommands(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	t.Setenv("CAIRN_TOKEN", gatewaytest.AdminToken)
	addr := c.GRPCAddr
	const value = "s3cr3t-from-stdin"

	setStdin(t, value+"\n")
	code, out, errOut := run(t, "secrets", "set", "deploy-token", "--addr", addr)
	if code != ExitOK || out != "secret deploy-token created (sealed under key test)\n" {
		t.Fatalf("secrets set: exit %d\n%s%s", code, out, errOut)
	}
	if v, ok := c.OpenSecret("default", "deploy-token"); !ok || v != value {
		t.Fatalf("stored %q %v, want the value without its newline", v, ok)
	}
	setStdin(t, value+"\r\n")
	if code, out, _ := run(t, "secrets", "set", "deploy-token", "--addr", addr, "--keep-newline"); code != ExitOK || !strings.Contains(out, "replaced") {
		t.Fatalf("secrets set again: exit %d %s", code, out)
	}
	if v, _ := c.OpenSecret("default", "deploy-token"); v != value+"\r\n" {
		t.Fatalf("--keep-newline stored %q", v)
	}
	file := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(file, []byte(value+"-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "-n", "team-a", "secrets", "set", "api", "--from-file", file, "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "namespace team-a") {
		t.Errorf("set in a missing namespace: exit %d %s%s", code, out, errOut)
	}
	if code, _, _ := run(t, "namespaces", "create", "team-a", "--addr", addr); code != ExitOK {
		t.Fatal("create team-a")
	}
	if code, out, errOut := run(t, "-n", "team-a", "secrets", "set", "api", "--from-file", file, "--addr", addr); code != ExitOK ||
		out != "secret team-a/api created (sealed under key test)\n" {
		t.Fatalf("set from a file: exit %d %s%s", code, out, errOut)
	}
	if v, _ := c.OpenSecret("team-a", "api"); v != value+"-file" {
		t.Fatalf("stored from the file: %q", v)
	}

	// The value never comes from argv; refusals do not repeat it.
	if code, _, errOut := run(t, "secrets", "set", "x1", value, "--addr", addr); code != ExitUsage || !strings.Contains(errOut, "never from the command line") {
		t.Errorf("a value on the command line: exit %d %s", code, errOut)
	}
	setStdin(t, "s3c\n")
	if code, _, errOut := run(t, "secrets", "set", "x1", "--addr", addr); code != ExitFail || !strings.Contains(errOut, "value: is 3 bytes long") ||
		strings.Contains(errOut, "s3c\n") {
		t.Errorf("a short value: exit %d %s", code, errOut)
	}
	setStdin(t, "")
	if code, _, errOut := run(t, "secrets", "set", "x1", "--addr", addr); code != ExitUsage || !strings.Contains(errOut, "no value") {
		t.Errorf("an empty stdin: exit %d %s", code, errOut)
	}

	// List: names, never values.
	code, out, _ = run(t, "secrets", "list", "--addr", addr)
	if code != ExitOK || !strings.Contains(out, "SECRET") || !strings.Contains(out, "deploy-token") || strings.Contains(out, "api") ||
		strings.Contains(out, "s3cr3t") {
		t.Errorf("secrets list: exit %d\n%s", code, out)
	}
	m := runJSON(t, addr, ExitOK, "-n", "team-a", "secrets", "list")
	if list := m["secrets"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "api" {
		t.Errorf("secrets list -n team-a: %v", m)
	}
	if code, out, _ := run(t, "secrets", "delete", "deploy-token", "--addr", addr); code != ExitOK || out != "secret deploy-token deleted\n" {
		t.Errorf("secrets delete: exit %d %s", code, out)
	}
	if code, _, errOut := run(t, "secrets", "delete", "deploy-token", "--addr", addr); code != ExitFail || !strings.Contains(errOut, "not found") {
		t.Errorf("delete twice: exit %d %s", code, errOut)
	}
	if code, out, _ := run(t, "secrets", "reseal", "--addr", addr); code != ExitOK || !strings.Contains(out, "sealed under key test") {
		t.Errorf("secrets reseal: exit %d %s", code, out)
	}
}
