package apitoken

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSecretFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if err := ParseSecret(s); err != nil {
			t.Fatalf("ParseSecret(NewSecret() = %q): %v", s, err)
		}
		if !strings.HasPrefix(s, SecretPrefix) || len(s) != len(SecretPrefix)+43 {
			t.Fatalf("secret %q: want %s + 43 characters", s, SecretPrefix)
		}
		if seen[s] {
			t.Fatalf("secret %q generated twice", s)
		}
		seen[s] = true
	}
}

func TestHashIsStable(t *testing.T) {
	s := NewSecret()
	if !bytes.Equal(Hash(s), Hash(s)) || len(Hash(s)) != 32 {
		t.Fatal("Hash is not a stable 32-byte digest")
	}
	if bytes.Equal(Hash(s), Hash(NewSecret())) {
		t.Fatal("two secrets hash alike")
	}
	if bytes.Contains(Hash(s), []byte(s)) {
		t.Fatal("the hash contains the secret")
	}
}

func TestParseSecretRejects(t *testing.T) {
	good := NewSecret()
	for _, s := range []string{
		"", "cairn_", "Bearer " + good, good + "x", good[:len(good)-1], " " + good,
		strings.Replace(good, "cairn_", "cairx_", 1), good[:20] + "!" + good[21:],
		strings.ToUpper(good[:6]) + good[6:],
	} {
		if err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) = nil, want ErrMalformed", s)
		}
	}
}

func TestAllows(t *testing.T) {
	admin := Grants{Scopes: []Scope{Admin}, Namespaces: []string{"*"}}
	for _, s := range AllScopes {
		if !admin.Allows(s) {
			t.Errorf("admin does not allow %s", s)
		}
	}
	if !admin.InNamespace("anything") {
		t.Error("* does not cover a namespace")
	}
	reader := Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"team-a"}}
	for _, s := range AllScopes {
		if got := reader.Allows(s); got != (s == RunsRead) {
			t.Errorf("runs:read token: Allows(%s) = %v", s, got)
		}
	}
	// A write scope does not imply its read scope, and tokens:write is not admin.
	if (Grants{Scopes: []Scope{RunsWrite, TokensWrite}}).Allows(RunsRead) {
		t.Error("runs:write implies runs:read")
	}
	if (Grants{Scopes: []Scope{TokensWrite}}).Allows(Admin) {
		t.Error("tokens:write implies admin")
	}
	if reader.InNamespace("team-b") || reader.InNamespace("*") || reader.AllNamespaces() {
		t.Error("a token of team-a covers another namespace")
	}
}

func TestCovers(t *testing.T) {
	now := time.Now()
	caller := Grants{Scopes: []Scope{RunsRead, TokensWrite}, Namespaces: []string{"a", "b"}, ExpiresAt: now.Add(time.Hour)}
	for _, c := range []struct {
		name string
		want Grants
		err  string // "" = allowed
	}{
		{"subset", Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"a"}, ExpiresAt: now.Add(time.Minute)}, ""},
		{"same", caller, ""},
		{"extra scope", Grants{Scopes: []Scope{RunsWrite}, Namespaces: []string{"a"}, ExpiresAt: now.Add(time.Minute)}, `scope "runs:write"`},
		{"admin", Grants{Scopes: []Scope{Admin}, Namespaces: []string{"a"}, ExpiresAt: now.Add(time.Minute)}, `scope "admin"`},
		{"other namespace", Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"c"}, ExpiresAt: now.Add(time.Minute)}, `namespace "c"`},
		{"every namespace", Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"*"}, ExpiresAt: now.Add(time.Minute)}, "namespaces: *"},
		{"outlives", Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"a"}, ExpiresAt: now.Add(2 * time.Hour)}, "cannot outlive"},
		{"never expires", Grants{Scopes: []Scope{RunsRead}, Namespaces: []string{"a"}}, "cannot outlive"},
	} {
		err := caller.Covers(c.want)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: Covers = %v, want nil", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: Covers = %v, want an error containing %q", c.name, err, c.err)
		}
	}
	root := Grants{Scopes: []Scope{Admin}, Namespaces: []string{"*"}}
	if err := root.Covers(Grants{Scopes: AllScopes, Namespaces: []string{"*"}}); err != nil {
		t.Errorf("a never-expiring admin token cannot mint everything: %v", err)
	}
}

func TestParseScopesAndNamespaces(t *testing.T) {
	if s, err := ParseScopes([]string{"runs:read", " runs:read", "admin"}); err != nil || len(s) != 2 {
		t.Errorf("ParseScopes = %v, %v; want 2 scopes", s, err)
	}
	for _, bad := range [][]string{nil, {"runs:delete"}, {"ADMIN"}, {""}} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) = nil error", bad)
		}
	}
	if ns, err := ParseNamespaces([]string{"a", "*", "b"}); err != nil || len(ns) != 1 || ns[0] != "*" {
		t.Errorf("ParseNamespaces with * = %v, %v; want [*]", ns, err)
	}
	for _, bad := range [][]string{nil, {"A"}, {"a b"}, {""}, {"-a"}} {
		if _, err := ParseNamespaces(bad); err == nil {
			t.Errorf("ParseNamespaces(%q) = nil error", bad)
		}
	}
	if err := CheckName("ci-deploy.1"); err != nil {
		t.Errorf("CheckName: %v", err)
	}
	if err := CheckName("Deploy"); err == nil {
		t.Error("CheckName(Deploy) = nil")
	}
}
