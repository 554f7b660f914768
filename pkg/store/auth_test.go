package store_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/store"
)

func newToken(name string, scopes ...apitoken.Scope) store.Token {
	return store.Token{Name: name, CreatedBy: "test", Grants: apitoken.Grants{
		Scopes: scopes, Namespaces: []string{"default"}, ExpiresAt: time.Now().Add(time.Hour)}}
}

func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	secret := apitoken.NewSecret()
	tok, err := e.s.CreateToken(e.ctx, newToken("ci", apitoken.RunsRead, apitoken.RunsWrite), apitoken.Hash(secret))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.s.TokenByHash(e.ctx, apitoken.Hash(secret))
	if err != nil || got.ID != tok.ID || !got.Live(time.Now()) || len(got.Grants.Scopes) != 2 {
		t.Fatalf("TokenByHash = %+v, %v; want the live token %s with 2 scopes", got, err, tok.ID)
	}
	if _, err := e.s.TokenByHash(e.ctx, apitoken.Hash(apitoken.NewSecret())); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v, want ErrNotFound", err)
	}
	// Nothing of the secret is stored: a dump of the row has neither it nor its base64 body.
	var row []byte
	if err := e.pool.QueryRow(e.ctx, `SELECT convert_to(t::text, 'UTF8') FROM api_tokens t`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row, []byte(secret)) || bytes.Contains(row, []byte(secret[len(apitoken.SecretPrefix):])) {
		t.Fatalf("the token row holds the secret: %s", row)
	}
	// A second live token with the same name is a conflict; after a revocation the name is free.
	if _, err := e.s.CreateToken(e.ctx, newToken("ci", apitoken.RunsRead), apitoken.Hash(apitoken.NewSecret())); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate live name: %v, want ErrConflict", err)
	}
	rev, err := e.s.RevokeToken(e.ctx, tok.ID)
	if err != nil || rev.RevokedAt.IsZero() || rev.Live(time.Now()) {
		t.Fatalf("RevokeToken = %+v, %v", rev, err)
	}
	again, err := e.s.RevokeToken(e.ctx, tok.ID)
	if err != nil || !again.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("second revoke changed revoked_at: %v → %v (%v)", rev.RevokedAt, again.RevokedAt, err)
	}
	if _, err := e.s.CreateToken(e.ctx, newToken("ci", apitoken.RunsRead), apitoken.Hash(apitoken.NewSecret())); err != nil {
		t.Fatalf("name of a revoked token not reusable: %v", err)
	}
	live, _, err := e.s.ListTokens(e.ctx, false, nil, store.PageRequest{})
	if err != nil || len(live) != 1 {
		t.Fatalf("ListTokens(live) = %d tokens, %v; want 1", len(live), err)
	}
	all, _, err := e.s.ListTokens(e.ctx, true, nil, store.PageRequest{})
	if err != nil || len(all) != 2 {
		t.Fatalf("ListTokens(all) = %d tokens, %v; want 2", len(all), err)
	}
}

func TestEnsureTokenKeepsARevokedBootstrapRevoked(t *testing.T) {
	e := newEnv(t)
	hash := apitoken.Hash(apitoken.NewSecret())
	boot := store.Token{Name: "bootstrap", Grants: apitoken.Grants{Scopes: []apitoken.Scope{apitoken.Admin}, Namespaces: []string{"*"}}}
	first, created, err := e.s.EnsureToken(e.ctx, boot, hash)
	if err != nil || !created {
		t.Fatalf("EnsureToken = %v, %v; want created", created, err)
	}
	if _, created, err := e.s.EnsureToken(e.ctx, boot, hash); err != nil || created {
		t.Fatalf("second EnsureToken = %v, %v; want not created", created, err)
	}
	if _, err := e.s.RevokeToken(e.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	got, created, err := e.s.EnsureToken(e.ctx, boot, hash)
	if err != nil || created || got.RevokedAt.IsZero() {
		t.Fatalf("EnsureToken after revoke = %+v, created %v, %v; want the revoked token", got, created, err)
	}
}

func TestListTokensPages(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if _, err := e.s.CreateToken(e.ctx, newToken(n, apitoken.RunsRead), apitoken.Hash(apitoken.NewSecret())); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	page := store.PageRequest{Size: 2}
	for i := 0; ; i++ {
		toks, next, err := e.s.ListTokens(e.ctx, false, nil, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range toks {
			if seen[tk.Name] {
				t.Fatalf("token %s listed twice", tk.Name)
			}
			seen[tk.Name] = true
		}
		if next == "" {
			break
		}
		if i > 5 {
			t.Fatal("paging does not end")
		}
		page.Token = next
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d tokens, want 5", len(seen))
	}
	if _, _, err := e.s.ListTokens(e.ctx, true, nil, page); !errors.Is(err, store.ErrInvalidPageToken) {
		t.Fatalf("a page token of another filter: %v, want ErrInvalidPageToken", err)
	}

	// Within some namespaces: only the tokens all of whose namespaces are there, in SQL (the
	// page tokens carry only those).
	other := newToken("other-ns", apitoken.RunsRead)
	other.Grants.Namespaces = []string{"default", "team-b"}
	if _, err := e.s.CreateToken(e.ctx, other, apitoken.Hash(apitoken.NewSecret())); err != nil {
		t.Fatal(err)
	}
	in, next, err := e.s.ListTokens(e.ctx, false, []string{"default"}, store.PageRequest{Size: 10})
	if err != nil || len(in) != 5 || next != "" {
		t.Fatalf("ListTokens within default = %d tokens, next %q, %v; want the 5 of default only", len(in), next, err)
	}
	for _, tk := range in {
		if tk.Name == "other-ns" {
			t.Fatal("a token of default and team-b is listed within default")
		}
	}
}

func TestLoginCodeWorksOnce(t *testing.T) {
	e := newEnv(t)
	tok, err := e.s.CreateToken(e.ctx, newToken("dev", apitoken.Admin), apitoken.Hash(apitoken.NewSecret()))
	if err != nil {
		t.Fatal(err)
	}
	code := apitoken.Hash("code-1")
	lc := store.LoginCode{TokenID: tok.ID, SessionTTL: time.Hour, ExpiresAt: time.Now().Add(time.Minute),
		Grants: apitoken.Grants{Scopes: []apitoken.Scope{apitoken.RunsRead}, Namespaces: []string{"default"}}}
	if err := e.s.CreateLoginCode(e.ctx, lc, code); err != nil {
		t.Fatal(err)
	}
	// Concurrent exchanges: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, creator, err := e.s.ConsumeLoginCode(e.ctx, code)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
				if creator.ID != tok.ID || got.SessionTTL != time.Hour || got.Grants.Scopes[0] != apitoken.RunsRead {
					t.Errorf("consumed %+v by %s", got, creator.ID)
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d exchanges of one code succeeded, want 1", wins)
	}
	// An expired code and a code of a revoked token are refused.
	expired := apitoken.Hash("code-2")
	lc.ExpiresAt = time.Now().Add(-time.Second)
	if err := e.s.CreateLoginCode(e.ctx, lc, expired); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.ConsumeLoginCode(e.ctx, expired); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired code: %v, want ErrNotFound", err)
	}
	orphan := apitoken.Hash("code-3")
	lc.ExpiresAt = time.Now().Add(time.Minute)
	if err := e.s.CreateLoginCode(e.ctx, lc, orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RevokeToken(e.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.ConsumeLoginCode(e.ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("code of a revoked token: %v, want ErrNotFound", err)
	}
}

func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	for i, ns := range []string{"default", "team-a", "default"} {
		id, err := e.s.StartAudit(e.ctx, store.AuditEvent{TokenName: "ci", Method: "/cairn.v1.RunService/StartRun", Namespace: ns, Resource: "etl"})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := e.s.FinishAudit(e.ctx, id, "OK", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs, _, err := e.s.ListAuditEvents(e.ctx, store.AuditFilter{Namespace: "default"}, store.PageRequest{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("ListAuditEvents(default) = %d, %v; want 2", len(evs), err)
	}
	if evs[0].Outcome != "UNKNOWN" || evs[1].Outcome != "OK" || evs[0].ID < evs[1].ID {
		t.Fatalf("events %+v: want newest first, the unfinished one UNKNOWN", evs)
	}
	all, next, err := e.s.ListAuditEvents(e.ctx, store.AuditFilter{}, store.PageRequest{Size: 2})
	if err != nil || len(all) != 2 || next == "" {
		t.Fatalf("first page: %d, %q, %v", len(all), next, err)
	}
	rest, next, err := e.s.ListAuditEvents(e.ctx, store.AuditFilter{}, store.PageRequest{Size: 2, Token: next})
	if err != nil || len(rest) != 1 || next != "" || rest[0].Namespace != "default" {
		t.Fatalf("second page: %+v, %q, %v", rest, next, err)
	}
}
