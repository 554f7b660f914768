package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/gateway/internal/auth"
)

// Token lifetimes (docs/security.md).
const (
	DefaultTokenTTL   = 30 * 24 * time.Hour
	MaxTokenTTL       = 366 * 24 * time.Hour
	DefaultCodeTTL    = 10 * time.Minute
	MaxCodeTTL        = time.Hour
	DefaultSessionTTL = 12 * time.Hour
	MaxSessionTTL     = 7 * 24 * time.Hour
)

// caller returns the authenticated principal; the interceptor guarantees one for every
// method that needs a token.
func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return p, status.Error(codes.Unauthenticated, "no authenticated caller")
	}
	return p, nil
}

// ttl reads an optional duration field: def when unset, else within (0, max].
func ttl(field string, d *durationpb.Duration, def, max time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fieldError(field, "%v", err)
	}
	v := d.AsDuration()
	if v <= 0 || v > max {
		return 0, fieldError(field, "must be positive and at most %s, got %s", max, v)
	}
	return v, nil
}

func tokenProto(t store.Token) *cairnv1.Token {
	out := &cairnv1.Token{
		Id: t.ID.String(), Name: t.Name, Namespaces: t.Grants.Namespaces,
		Scopes: apitoken.ScopeNames(t.Grants.Scopes), CreatedAt: timestamppb.New(t.CreatedAt), CreatedBy: t.CreatedBy,
	}
	if !t.Grants.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(t.Grants.ExpiresAt)
	}
	if !t.RevokedAt.IsZero() {
		out.RevokedAt = timestamppb.New(t.RevokedAt)
	}
	return out
}

// grants checks requested scopes and namespaces (empty: the caller's own, when allowed).
func grants(p auth.Principal, scopes, namespaces []string, emptyIsCallers bool) (apitoken.Grants, error) {
	var g apitoken.Grants
	var err error
	if len(scopes) == 0 && emptyIsCallers {
		g.Scopes = slices.Clone(p.Grants.Scopes)
	} else if g.Scopes, err = apitoken.ParseScopes(scopes); err != nil {
		return g, fieldError("scopes", "%v", err)
	}
	if len(namespaces) == 0 && emptyIsCallers {
		g.Namespaces = slices.Clone(p.Grants.Namespaces)
	} else if g.Namespaces, err = apitoken.ParseNamespaces(namespaces); err != nil {
		return g, fieldError("namespaces", "%v", err)
	}
	return g, nil
}

// covers refuses grants beyond the caller's (PERMISSION_DENIED naming what is beyond).
func covers(p auth.Principal, want apitoken.Grants) error {
	if err := p.Grants.Covers(want); err != nil {
		return status.Errorf(codes.PermissionDenied, "a token can never grant more than it has: %v", err)
	}
	return nil
}

// CreateToken mints a token within the caller's grants.
func (s *Server) CreateToken(ctx context.Context, req *cairnv1.CreateTokenRequest) (*cairnv1.CreateTokenResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := apitoken.CheckName(req.GetName()); err != nil {
		return nil, fieldError("name", "%v", err)
	}
	g, err := grants(p, req.GetScopes(), req.GetNamespaces(), false)
	if err != nil {
		return nil, err
	}
	life, err := ttl("ttl", req.GetTtl(), DefaultTokenTTL, MaxTokenTTL)
	if err != nil {
		return nil, err
	}
	g.ExpiresAt = time.Now().Add(life)
	if exp := p.Grants.ExpiresAt; req.GetTtl() == nil && !exp.IsZero() && g.ExpiresAt.After(exp) {
		g.ExpiresAt = exp // the default lifetime never outlives the caller; an explicit ttl beyond it is refused
	}
	if err := covers(p, g); err != nil {
		return nil, err
	}
	secret := apitoken.NewSecret()
	t, err := s.store.CreateToken(ctx, store.Token{Name: req.GetName(), Grants: g, CreatedBy: p.Name}, apitoken.Hash(secret))
	if errors.Is(err, store.ErrConflict) {
		return nil, status.Errorf(codes.AlreadyExists, "name: a live token is named %q; revoke it first or choose another name", req.GetName())
	}
	if err != nil {
		return nil, toStatus(err, "token "+req.GetName())
	}
	s.log.Info("token created", "token", t.Name, "token_id", t.ID, "by", p.Name)
	return &cairnv1.CreateTokenResponse{Token: tokenProto(t), Secret: secret}, nil
}

// visible reports whether a caller may see (list, revoke) a token: every namespace of the
// token must be one of the caller's.
func visible(p auth.Principal, t store.Token) bool {
	return p.Grants.CoversNamespaces(t.Grants.Namespaces) == nil
}

// ListTokens lists the tokens the caller may see.
func (s *Server) ListTokens(ctx context.Context, req *cairnv1.ListTokensRequest) (*cairnv1.ListTokensResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var within []string // nil: every token
	if !p.Grants.AllNamespaces() {
		within = p.Grants.Namespaces
	}
	toks, next, err := s.store.ListTokens(ctx, req.GetIncludeRevoked(), within, store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "tokens")
	}
	resp := &cairnv1.ListTokensResponse{Tokens: make([]*cairnv1.Token, 0, len(toks)), NextPageToken: next}
	for _, t := range toks {
		resp.Tokens = append(resp.Tokens, tokenProto(t))
	}
	return resp, nil
}

// RevokeToken revokes a token the caller may see; another is NOT_FOUND.
func (s *Server) RevokeToken(ctx context.Context, req *cairnv1.RevokeTokenRequest) (*cairnv1.RevokeTokenResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID("id", req.GetId())
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetToken(ctx, id)
	if err == nil && !visible(p, t) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, toStatus(err, "token "+id.String())
	}
	if t, err = s.store.RevokeToken(ctx, id); err != nil {
		return nil, toStatus(err, "token "+id.String())
	}
	s.log.Info("token revoked", "token", t.Name, "token_id", t.ID, "by", p.Name)
	return &cairnv1.RevokeTokenResponse{Token: tokenProto(t)}, nil
}

// WhoAmI describes the calling token.
func (s *Server) WhoAmI(ctx context.Context, _ *cairnv1.WhoAmIRequest) (*cairnv1.WhoAmIResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.TokenID == uuid.Nil { // insecure mode
		return &cairnv1.WhoAmIResponse{Token: &cairnv1.Token{Name: p.Name, Namespaces: p.Grants.Namespaces,
			Scopes: apitoken.ScopeNames(p.Grants.Scopes)}}, nil
	}
	t, err := s.store.GetToken(ctx, p.TokenID)
	if err != nil {
		return nil, toStatus(err, "token")
	}
	return &cairnv1.WhoAmIResponse{Token: tokenProto(t)}, nil
}

// CreateLoginCode stores a single-use code for a session within the caller's grants.
func (s *Server) CreateLoginCode(ctx context.Context, req *cairnv1.CreateLoginCodeRequest) (*cairnv1.CreateLoginCodeResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.TokenID == uuid.Nil {
		return nil, status.Error(codes.FailedPrecondition, "login codes need authentication: the gateway runs in insecure mode")
	}
	g, err := grants(p, req.GetScopes(), req.GetNamespaces(), true)
	if err != nil {
		return nil, err
	}
	codeTTL, err := ttl("code_ttl", req.GetCodeTtl(), DefaultCodeTTL, MaxCodeTTL)
	if err != nil {
		return nil, err
	}
	session, err := ttl("session_ttl", req.GetSessionTtl(), DefaultSessionTTL, MaxSessionTTL)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	g.ExpiresAt = now.Add(session)
	if exp := p.Grants.ExpiresAt; !exp.IsZero() && g.ExpiresAt.After(exp) {
		g.ExpiresAt = exp // a session never outlives the token that opened it
		session = exp.Sub(now)
	}
	if err := covers(p, g); err != nil {
		return nil, err
	}
	code := apitoken.NewSecret()
	lc := store.LoginCode{TokenID: p.TokenID, Grants: g, SessionTTL: session, ExpiresAt: now.Add(codeTTL)}
	if err := s.store.CreateLoginCode(ctx, lc, apitoken.Hash(code)); err != nil {
		return nil, toStatus(err, "login code")
	}
	return &cairnv1.CreateLoginCodeResponse{Code: code, ExpiresAt: timestamppb.New(lc.ExpiresAt)}, nil
}

// ExchangeLoginCode turns a login code into a session token, once.
func (s *Server) ExchangeLoginCode(ctx context.Context, req *cairnv1.ExchangeLoginCodeRequest) (*cairnv1.ExchangeLoginCodeResponse, error) {
	invalid := status.Error(codes.Unauthenticated, "login code is unknown, used or expired: ask for a new link")
	if apitoken.ParseSecret(req.GetCode()) != nil {
		return nil, invalid
	}
	lc, creator, err := s.store.ConsumeLoginCode(ctx, apitoken.Hash(req.GetCode()))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid
	}
	if err != nil {
		return nil, toStatus(err, "login code")
	}
	g := lc.Grants
	g.ExpiresAt = time.Now().Add(lc.SessionTTL)
	if exp := creator.Grants.ExpiresAt; !exp.IsZero() && g.ExpiresAt.After(exp) {
		g.ExpiresAt = exp
	}
	secret := apitoken.NewSecret()
	name := fmt.Sprintf("session-%s", uuid.NewString()[:8])
	t, err := s.store.CreateToken(ctx, store.Token{Name: name, Grants: g, CreatedBy: creator.Name}, apitoken.Hash(secret))
	if err != nil {
		return nil, toStatus(err, "session token")
	}
	s.log.Info("login code exchanged", "token", t.Name, "token_id", t.ID, "by", creator.Name)
	return &cairnv1.ExchangeLoginCodeResponse{Token: tokenProto(t), Secret: secret}, nil
}

// ListAuditEvents lists the audit trail.
func (s *Server) ListAuditEvents(ctx context.Context, req *cairnv1.ListAuditEventsRequest) (*cairnv1.ListAuditEventsResponse, error) {
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	evs, next, err := s.store.ListAuditEvents(ctx, store.AuditFilter{Namespace: req.GetNamespace(), TokenName: req.GetTokenName()},
		store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "audit events")
	}
	resp := &cairnv1.ListAuditEventsResponse{Events: make([]*cairnv1.AuditEvent, 0, len(evs)), NextPageToken: next}
	for _, e := range evs {
		out := &cairnv1.AuditEvent{Id: e.ID, Time: timestamppb.New(e.At), TokenName: e.TokenName, Method: e.Method,
			Namespace: e.Namespace, Resource: e.Resource, Outcome: e.Outcome}
		if e.TokenID != uuid.Nil {
			out.TokenId = e.TokenID.String()
		}
		resp.Events = append(resp.Events, out)
	}
	return resp, nil
}
