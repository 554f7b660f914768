package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

func TestTokenCommands(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{TokenCacheTTL: 100 * time.Millisecond})
	addr := c.GRPCAddr

	// Without any token: unauthenticated, exit 1, with the hint where cairnctl looks.
	t.Setenv("CAIRN_TOKEN", "")
	t.Chdir(t.TempDir()) // no .cairn/cairnctl.json here
	code, _, errOut := run(t, "runs", "list", "--addr", addr)
	if code != ExitFail || !strings.Contains(errOut, "unauthenticated") || !strings.Contains(errOut, "CAIRN_TOKEN") {
		t.Fatalf("runs list without a token: exit %d\n%s", code, errOut)
	}
	t.Setenv("CAIRN_TOKEN", "not-a-token")
	if code, _, errOut := run(t, "runs", "list", "--addr", addr); code != ExitUsage || !strings.Contains(errOut, "CAIRN_TOKEN is not a Cairn token") {
		t.Fatalf("runs list with a malformed CAIRN_TOKEN: exit %d\n%s", code, errOut)
	}

	// The bootstrap path writes an admin token straight into the database.
	code, out, errOut := run(t, "tokens", "bootstrap", "--database-url", c.Store.Pool().Config().ConnString(), "--name", "ops")
	admin := strings.TrimSpace(out)
	if code != ExitOK || apitoken.ParseSecret(admin) != nil || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("tokens bootstrap: exit %d, stdout %q\n%s", code, out, errOut)
	}
	t.Setenv("CAIRN_TOKEN", admin)
	if code, out, errOut := run(t, "tokens", "whoami", "--addr", addr); code != ExitOK || !strings.Contains(out, "token ops") || !strings.Contains(out, "admin") {
		t.Fatalf("whoami as ops: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = run(t, "tokens", "create", "ci", "--scopes", "runs:read,runs:write", "--namespaces", "default", "--ttl", "1h", "--addr", addr)
	ci := strings.TrimSpace(out)
	if code != ExitOK || apitoken.ParseSecret(ci) != nil {
		t.Fatalf("tokens create: exit %d, stdout %q\n%s", code, out, errOut)
	}
	code, out, _ = run(t, "tokens", "list", "--addr", addr)
	if code != ExitOK || !strings.Contains(out, "ci") || strings.Contains(out, ci) {
		t.Fatalf("tokens list: exit %d (must list ci without its secret)\n%s", code, out)
	}
	m := runJSON(t, addr, ExitOK, "tokens", "list")
	var ciID string
	for _, tk := range m["tokens"].([]any) {
		if tk := tk.(map[string]any); tk["name"] == "ci" {
			ciID = tk["id"].(string)
		}
	}
	if ciID == "" {
		t.Fatalf("tokens list --json has no ci: %v", m)
	}

	// ci may list runs but not create tokens.
	t.Setenv("CAIRN_TOKEN", ci)
	if code, _, errOut := run(t, "runs", "list", "--addr", addr); code != ExitOK {
		t.Fatalf("runs list as ci: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := run(t, "tokens", "create", "x", "--scopes", "admin", "--namespaces", "*", "--addr", addr); code != ExitFail || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("tokens create as ci: exit %d\n%s", code, errOut)
	}

	// Revoked: refused within the cache TTL.
	t.Setenv("CAIRN_TOKEN", admin)
	if code, out, errOut := run(t, "tokens", "revoke", ciID, "--addr", addr); code != ExitOK || !strings.Contains(out, "revoked") {
		t.Fatalf("tokens revoke: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("CAIRN_TOKEN", ci)
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _, errOut := run(t, "runs", "list", "--addr", addr)
		if code == ExitFail && strings.Contains(errOut, "unauthenticated") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted after 3 s: exit %d\n%s", code, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The audit trail names who did what.
	t.Setenv("CAIRN_TOKEN", admin)
	code, out, errOut = run(t, "audit", "--token", "ops", "--addr", addr)
	if code != ExitOK || !strings.Contains(out, "AuthService/CreateToken") || !strings.Contains(out, "AuthService/RevokeToken") {
		t.Fatalf("audit: exit %d\n%s%s", code, out, errOut)
	}

	if code, out, _ := run(t, "tokens", "generate"); code != ExitOK || apitoken.ParseSecret(strings.TrimSpace(out)) != nil {
		t.Fatalf("tokens generate: exit %d, %q", code, out)
	}
}
