package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-io/cairn/pkg/apitoken"
)

// API tokens, login codes and audit events (migration 000005). The gateway writes these
// tables itself: they are not orchestration state, so they need neither the leader nor its
// epoch.

// Token is a stored API token. Its secret is never stored, only apitoken.Hash of it.
type Token struct {
	ID        uuid.UUID
	Name      string
	Grants    apitoken.Grants
	CreatedBy string
	CreatedAt time.Time
	RevokedAt time.Time // zero while live
}

// Live reports whether the token is neither revoked nor expired at now.
func (t Token) Live(now time.Time) bool { return t.RevokedAt.IsZero() && !t.Grants.Expired(now) }

const tokenCols = `id, name, namespaces, scopes, created_by, created_at, expires_at, revoked_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	var scopes []string
	var expires, revoked *time.Time
	if err := row.Scan(&t.ID, &t.Name, &t.Grants.Namespaces, &scopes, &t.CreatedBy, &t.CreatedAt, &expires, &revoked); err != nil {
		return t, err
	}
	for _, s := range scopes {
		t.Grants.Scopes = append(t.Grants.Scopes, apitoken.Scope(s))
	}
	if expires != nil {
		t.Grants.ExpiresAt = *expires
	}
	if revoked != nil {
		t.RevokedAt = *revoked
	}
	return t, nil
}

// CreateToken stores a token under the hash of its secret. A live token of the same name is
// ErrConflict (a *ConflictError naming it).
func (s *Store) CreateToken(ctx context.Context, t Token, hash []byte) (Token, error) {
	if len(hash) != 32 {
		return Token{}, fmt.Errorf("create token: %w", invalidf("hash has %d bytes, want 32", len(hash)))
	}
	if t.ID == uuid.Nil {
		t.ID = uuid.New()
	}
	row := s.pool.QueryRow(ctx, `
		INSERT INTO api_tokens (id, name, hash, namespaces, scopes, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+tokenCols,
		t.ID, t.Name, hash, t.Grants.Namespaces, apitoken.ScopeNames(t.Grants.Scopes), t.CreatedBy, nullTime(t.Grants.ExpiresAt))
	out, err := scanToken(row)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "api_tokens_live_name" {
		return Token{}, fmt.Errorf("create token: %w", &ConflictError{
			Op: "token " + t.Name, Expected: "no live token of that name", Actual: "a live token has it (revoke it first or choose another name)"})
	}
	if err != nil {
		return Token{}, fmt.Errorf("create token %s: %w", t.Name, err)
	}
	return out, nil
}

// EnsureToken stores a token under hash unless a token with that hash exists already,
// revoked or not (a revoked bootstrap token stays revoked). It reports whether it stored one.
func (s *Store) EnsureToken(ctx context.Context, t Token, hash []byte) (Token, bool, error) {
	if cur, err := s.TokenByHash(ctx, hash); err == nil {
		return cur, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Token{}, false, err
	}
	out, err := s.CreateToken(ctx, t, hash)
	if err != nil {
		// Another gateway may have stored the same bootstrap token at the same time.
		if cur, err2 := s.TokenByHash(ctx, hash); err2 == nil {
			return cur, false, nil
		}
		return Token{}, false, err
	}
	return out, true, nil
}

// TokenByHash returns the token whose secret hashes to hash, revoked or expired ones
// included (the caller decides), or ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("token by hash: %w", err)
	}
	return t, nil
}

// GetToken returns a token by ID, or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id uuid.UUID) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

// RevokeToken marks a token revoked (keeping the first revocation time) and returns it.
func (s *Store) RevokeToken(ctx context.Context, id uuid.UUID) (Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `
		UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
		RETURNING `+tokenCols, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, nil
}

// ListTokens lists tokens newest first; revoked ones only when asked. With within set, only
// the tokens whose every namespace is in within (none with `*`): what a token limited to
// those namespaces may see. The filter is in SQL so that page tokens never carry a row the
// caller may not see.
func (s *Store) ListTokens(ctx context.Context, includeRevoked bool, within []string, page PageRequest) (tokens []Token, next string, err error) {
	query := fmt.Sprintf("tokens|%v|%q", includeRevoked, within)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	sql, args := `SELECT `+tokenCols+` FROM api_tokens WHERE true`, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !includeRevoked {
		sql += ` AND revoked_at IS NULL`
	}
	if within != nil {
		sql += ` AND namespaces <@ ` + arg(within)
	}
	if key != nil {
		id, err := uuid.Parse(key.ID)
		if err != nil {
			return nil, "", fmt.Errorf("list tokens: %w: bad key", ErrInvalidPageToken)
		}
		sql += fmt.Sprintf(` AND (created_at, id) < (%s, %s)`, arg(time.UnixMicro(key.Micro)), arg(id))
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	if tokens, err = collect(rows, scanToken); err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	if len(tokens) > limit {
		tokens = tokens[:limit]
		last := tokens[limit-1]
		next = encodeToken(pageKey{Query: query, Micro: last.CreatedAt.UnixMicro(), ID: last.ID.String()})
	}
	return tokens, next, nil
}

// LoginCode is a stored single-use login code (only its hash is kept).
type LoginCode struct {
	TokenID    uuid.UUID       // the token that created it
	Grants     apitoken.Grants // of the session it opens (ExpiresAt unused)
	SessionTTL time.Duration
	ExpiresAt  time.Time
}

// CreateLoginCode stores a login code under the hash of its value.
func (s *Store) CreateLoginCode(ctx context.Context, c LoginCode, hash []byte) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO login_codes (hash, token_id, namespaces, scopes, session_ttl, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		hash, c.TokenID, c.Grants.Namespaces, apitoken.ScopeNames(c.Grants.Scopes), c.SessionTTL, c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create login code: %w", err)
	}
	return nil
}

// ConsumeLoginCode marks the code used and returns it with the token that created it, if the
// code exists, is unused and unexpired, and its creator is still live; otherwise ErrNotFound
// (the caller must not say which). Of concurrent calls with one code at most one succeeds.
func (s *Store) ConsumeLoginCode(ctx context.Context, hash []byte) (LoginCode, Token, error) {
	var c LoginCode
	var scopes []string
	// The creator is read by the statement that consumes the code (one snapshot: a creator
	// revoked after it cannot burn the code without a session, nor slip one through).
	row := s.pool.QueryRow(ctx, `
		UPDATE login_codes c SET used_at = now()
		FROM api_tokens t
		WHERE c.hash = $1 AND c.used_at IS NULL AND c.expires_at > now()
		  AND t.id = c.token_id AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
		RETURNING c.token_id, c.namespaces, c.scopes, c.session_ttl, c.expires_at,
		          t.id, t.name, t.namespaces, t.scopes, t.created_by, t.created_at, t.expires_at, t.revoked_at`, hash)
	var creator Token
	var cScopes []string
	var cExpires, cRevoked *time.Time
	err := row.Scan(&c.TokenID, &c.Grants.Namespaces, &scopes, &c.SessionTTL, &c.ExpiresAt,
		&creator.ID, &creator.Name, &creator.Grants.Namespaces, &cScopes, &creator.CreatedBy, &creator.CreatedAt, &cExpires, &cRevoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return LoginCode{}, Token{}, fmt.Errorf("login code: %w", ErrNotFound)
	}
	if err != nil {
		return LoginCode{}, Token{}, fmt.Errorf("consume login code: %w", err)
	}
	for _, sc := range scopes {
		c.Grants.Scopes = append(c.Grants.Scopes, apitoken.Scope(sc))
	}
	for _, sc := range cScopes {
		creator.Grants.Scopes = append(creator.Grants.Scopes, apitoken.Scope(sc))
	}
	if cExpires != nil {
		creator.Grants.ExpiresAt = *cExpires
	}
	if cRevoked != nil {
		creator.RevokedAt = *cRevoked
	}
	return c, creator, nil
}

// AuditEvent is one recorded API mutation.
type AuditEvent struct {
	ID        int64
	At        time.Time
	TokenID   uuid.UUID // uuid.Nil when the call had no token (insecure mode)
	TokenName string
	Method    string
	Namespace string
	Resource  string
	Outcome   string // a gRPC code name; UNKNOWN until the call returned
}

// StartAudit records a mutation about to be carried out, with outcome UNKNOWN, and returns
// its ID for FinishAudit.
func (s *Store) StartAudit(ctx context.Context, e AuditEvent) (int64, error) {
	var tokenID *uuid.UUID
	if e.TokenID != uuid.Nil {
		tokenID = &e.TokenID
	}
	var id int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO audit_events (token_id, token_name, method, namespace, resource)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		tokenID, e.TokenName, e.Method, e.Namespace, e.Resource).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record audit event: %w", err)
	}
	return id, nil
}

// FinishAudit records the outcome of an audited call, and the resource when the call named it
// only in its response (a workflow's name is in its YAML).
func (s *Store) FinishAudit(ctx context.Context, id int64, outcome, resource string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE audit_events SET outcome = $2, resource = CASE WHEN $3 = '' THEN resource ELSE $3 END
		WHERE id = $1`, id, outcome, resource)
	if err != nil {
		return fmt.Errorf("record audit outcome: %w", err)
	}
	return nil
}

// AuditFilter narrows ListAuditEvents.
type AuditFilter struct {
	Namespace string
	TokenName string
}

// ListAuditEvents lists audit events newest first.
func (s *Store) ListAuditEvents(ctx context.Context, f AuditFilter, page PageRequest) (events []AuditEvent, next string, err error) {
	query := fmt.Sprintf("audit|%q|%q", f.Namespace, f.TokenName)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	sql, args := `SELECT id, at, token_id, token_name, method, namespace, resource, outcome FROM audit_events WHERE true`, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Namespace != "" {
		sql += ` AND namespace = ` + arg(f.Namespace)
	}
	if f.TokenName != "" {
		sql += ` AND token_name = ` + arg(f.TokenName)
	}
	if key != nil {
		sql += ` AND id < ` + arg(key.N)
	}
	sql += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	events, err = collect(rows, func(r pgx.Row) (AuditEvent, error) {
		var e AuditEvent
		var tokenID *uuid.UUID
		err := r.Scan(&e.ID, &e.At, &tokenID, &e.TokenName, &e.Method, &e.Namespace, &e.Resource, &e.Outcome)
		if tokenID != nil {
			e.TokenID = *tokenID
		}
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	if len(events) > limit {
		events = events[:limit]
		next = encodeToken(pageKey{Query: query, N: events[limit-1].ID})
	}
	return events, next, nil
}
