package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scope is a permission a token grants.
type Scope string

// The scopes. Admin implies every other one.
const (
	WorkflowsRead    Scope = "workflows:read"
	WorkflowsWrite   Scope = "workflows:write"
	RunsRead         Scope = "runs:read"
	RunsWrite        Scope = "runs:write"
	DeadLettersRead  Scope = "deadletters:read"
	DeadLettersWrite Scope = "deadletters:write"
	SecretsRead      Scope = "secrets:read"
	SecretsWrite     Scope = "secrets:write"
	ClusterRead      Scope = "cluster:read"
	TokensWrite      Scope = "tokens:write"
	Admin            Scope = "admin"
)

// AllScopes lists every scope, in the order docs/security.md gives them.
var AllScopes = []Scope{WorkflowsRead, WorkflowsWrite, RunsRead, RunsWrite, DeadLettersRead,
	DeadLettersWrite, SecretsRead, SecretsWrite, ClusterRead, TokensWrite, Admin}

// AllNamespaces is the namespace entry that means every namespace.
const AllNamespaces = "*"

// SecretPrefix starts every token secret, so that a leaked one is recognisable (secret
// scanners, logs) and a value of another kind is refused at once.
const SecretPrefix = "cairn_"

// secretBytes is the entropy of a secret: 256 bits.
const secretBytes = 32

// secretLen is the length of a secret: the prefix and 43 base64url characters.
var secretLen = len(SecretPrefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

var secretRE = regexp.MustCompile(`^` + SecretPrefix + `[A-Za-z0-9_-]{43}$`)

// nameRE is the workflow-name rule, which token and namespace names follow.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// ErrMalformed is matched by the error of a secret that is not in the token format.
var ErrMalformed = errors.New("malformed token")

// NewSecret returns a new random secret.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseSecret checks that s has the format of a secret.
func ParseSecret(s string) error {
	if len(s) != secretLen || !secretRE.MatchString(s) {
		return ErrMalformed
	}
	return nil
}

// Hash is what the store keeps of a secret. A secret has 256 random bits, so a fast hash is
// enough: there is nothing to brute-force, unlike a password.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CheckName checks a token name against the workflow-name rule.
func CheckName(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid name (want %s)", name, nameRE)
	}
	return nil
}

// ParseScopes checks a list of scope names; duplicates are dropped, order is kept.
func ParseScopes(names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, errors.New("is required: name at least one scope")
	}
	var out []Scope
	for _, n := range names {
		s := Scope(strings.TrimSpace(n))
		if !slices.Contains(AllScopes, s) {
			return nil, fmt.Errorf("unknown scope %q (known: %s)", n, joinScopes(AllScopes))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// ParseNamespaces checks a list of namespace names (or `*`); duplicates are dropped.
func ParseNamespaces(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("is required: name at least one namespace, or * for all")
	}
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n != AllNamespaces && !nameRE.MatchString(n) {
			return nil, fmt.Errorf("%q is not a namespace name (want %s, or * for all)", n, nameRE)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if slices.Contains(out, AllNamespaces) {
		return []string{AllNamespaces}, nil
	}
	return out, nil
}

func joinScopes(s []Scope) string {
	names := make([]string, len(s))
	for i, x := range s {
		names[i] = string(x)
	}
	return strings.Join(names, ", ")
}

// Grants is what a token allows: scopes, namespaces and an expiry (zero: never).
type Grants struct {
	Scopes     []Scope
	Namespaces []string
	ExpiresAt  time.Time
}

// Allows reports whether the grants include scope (admin includes every scope).
func (g Grants) Allows(scope Scope) bool {
	return slices.Contains(g.Scopes, Admin) || slices.Contains(g.Scopes, scope)
}

// InNamespace reports whether the grants cover namespace ns (`*` covers every namespace).
func (g Grants) InNamespace(ns string) bool {
	return slices.Contains(g.Namespaces, AllNamespaces) || slices.Contains(g.Namespaces, ns)
}

// AllNamespaces reports whether the grants cover every namespace.
func (g Grants) AllNamespaces() bool { return slices.Contains(g.Namespaces, AllNamespaces) }

// Expired reports whether the grants have expired at now.
func (g Grants) Expired(now time.Time) bool {
	return !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt)
}

// Covers returns nil if every scope, namespace and the lifetime of want are within g, and
// otherwise an error naming the first thing that is not: a token can never mint more than
// it has.
func (g Grants) Covers(want Grants) error {
	for _, s := range want.Scopes {
		if !g.Allows(s) {
			return fmt.Errorf("scope %q is not granted to the calling token", s)
		}
	}
	if err := g.CoversNamespaces(want.Namespaces); err != nil {
		return err
	}
	if !g.ExpiresAt.IsZero() && (want.ExpiresAt.IsZero() || want.ExpiresAt.After(g.ExpiresAt)) {
		return fmt.Errorf("expiry: the calling token expires at %s; a token it creates cannot outlive it",
			g.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// CoversNamespaces returns nil if every namespace of namespaces is within g (`*` only
// within `*`), and otherwise an error naming the first one that is not.
func (g Grants) CoversNamespaces(namespaces []string) error {
	for _, ns := range namespaces {
		if ns == AllNamespaces && !g.AllNamespaces() {
			return errors.New("namespaces: * (every namespace) is not granted to the calling token")
		}
		if !g.InNamespace(ns) {
			return fmt.Errorf("namespace %q is not granted to the calling token", ns)
		}
	}
	return nil
}

// ScopeNames returns the scopes as strings.
func ScopeNames(s []Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}
