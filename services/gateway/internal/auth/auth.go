package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// PrincipalMetadata is the gRPC metadata key under which the gateway passes the caller's token
// name to the scheduler with each forwarded call.
const PrincipalMetadata = "cairn-principal"

// DefaultCacheTTL bounds how long a gateway trusts what it read about a token: a revoked
// token is refused by every gateway within this time.
const DefaultCacheTTL = 2 * time.Second

// maxCacheEntries bounds the token cache; when full it is emptied (garbage tokens cannot
// grow it without bound).
const maxCacheEntries = 10000

// errUnauthenticated is the one answer to a missing, malformed, unknown, expired or revoked
// token: it never says which.
var errUnauthenticated = status.Error(codes.Unauthenticated, errUnauthenticatedMsg)

const errUnauthenticatedMsg = "missing or invalid token: send `Authorization: Bearer <token>` with a live API token"

func isUnavailable(err error) bool { return status.Code(err) == codes.Unavailable }

// Principal is the caller of a request: the token it presented.
type Principal struct {
	TokenID uuid.UUID // uuid.Nil in insecure mode
	Name    string
	Grants  apitoken.Grants
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request, if it was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Store is what the authenticator needs of the store.
type Store interface {
	TokenByHash(ctx context.Context, hash []byte) (store.Token, error)
	StartAudit(ctx context.Context, e store.AuditEvent) (int64, error)
	FinishAudit(ctx context.Context, id int64, outcome, resource string) error
}

// Config configures an Authenticator.
type Config struct {
	Store Store // required
	// Insecure turns authentication off: every call runs as an admin named "insecure". The
	// gateway allows it only when every listener is on loopback. Audit events are still
	// written.
	Insecure bool
	CacheTTL time.Duration    // 0: DefaultCacheTTL
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger
}

// Authenticator checks the token and the rule of every public call (gRPC interceptors) and
// records mutations in the audit trail.
type Authenticator struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	tok   store.Token
	found bool
	at    time.Time
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: Store is nil")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Authenticator{cfg: cfg, log: cfg.Logger.With("component", "auth"), cache: map[[32]byte]cached{}}, nil
}

// insecurePrincipal is the caller of every request in insecure mode.
var insecurePrincipal = Principal{Name: "insecure", Grants: apitoken.Grants{
	Scopes: []apitoken.Scope{apitoken.Admin}, Namespaces: []string{apitoken.AllNamespaces}}}

// Authenticate returns the principal of a bearer secret: UNAUTHENTICATED for anything but a
// live token, UNAVAILABLE when the store cannot be asked.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if apitoken.ParseSecret(secret) != nil {
		return Principal{}, errUnauthenticated
	}
	var key [32]byte
	copy(key[:], apitoken.Hash(secret))
	now := a.cfg.Now()
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if !ok || now.Sub(c.at) >= a.cfg.CacheTTL || now.Before(c.at) {
		tok, err := a.cfg.Store.TokenByHash(ctx, key[:])
		switch {
		case err == nil:
			c = cached{tok: tok, found: true, at: now}
		case errors.Is(err, store.ErrNotFound):
			c = cached{at: now}
		default:
			a.log.Warn("cannot look up a token", "error", err)
			return Principal{}, status.Error(codes.Unavailable, "cannot check the token now: the database is unreachable; retry")
		}
		a.mu.Lock()
		if len(a.cache) >= maxCacheEntries {
			clear(a.cache)
		}
		a.cache[key] = c
		a.mu.Unlock()
	}
	if !c.found || !c.tok.Live(now) {
		return Principal{}, errUnauthenticated
	}
	return Principal{TokenID: c.tok.ID, Name: c.tok.Name, Grants: c.tok.Grants}, nil
}

// bearer returns the secret of the request's single `authorization: Bearer …` value.
func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	return parseBearer(md.Get("authorization"))
}

// parseBearer returns the secret of exactly one `Bearer …` value: none, or a second one
// smuggled in (Grpc-Metadata-Authorization through REST), is no credential.
func parseBearer(vals []string) (string, bool) {
	if len(vals) != 1 {
		return "", false
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	return strings.TrimSpace(secret), true
}

// namespaced is a request that names a namespace.
type namespaced interface{ GetNamespace() string }

// RequestNamespace returns the namespace a request names (model.DefaultNamespace when empty).
func RequestNamespace(req any) string {
	if n, ok := req.(namespaced); ok && n.GetNamespace() != "" {
		return n.GetNamespace()
	}
	return model.DefaultNamespace
}

// authorize decides a call: the principal, or the status to answer.
func (a *Authenticator) authorize(ctx context.Context, method string) (Rule, Principal, error) {
	rule, ok := Rules[method]
	if !ok {
		return rule, Principal{}, status.Errorf(codes.PermissionDenied, "method %s is not part of the public API", method)
	}
	if a.cfg.Insecure {
		return rule, insecurePrincipal, nil
	}
	if rule.NoToken {
		return rule, Principal{}, nil
	}
	secret, ok := bearer(ctx)
	if !ok {
		return rule, Principal{}, errUnauthenticated
	}
	p, err := a.Authenticate(ctx, secret)
	if err != nil {
		return rule, Principal{}, err
	}
	return rule, p, nil
}

// checkRequest applies the namespace and scope parts of rule to a request. The namespace
// comes first: a namespace the token may not use is NOT_FOUND whatever the scope, so a
// token learns nothing about namespaces outside its own.
func checkRequest(rule Rule, p Principal, req any) error {
	if rule.NoToken {
		return nil
	}
	if rule.Namespaced {
		if ns := RequestNamespace(req); !p.Grants.InNamespace(ns) {
			return status.Errorf(codes.NotFound, "namespace %s not found", ns)
		}
	}
	if rule.Scope != "" && !p.Grants.Allows(rule.Scope) {
		return status.Errorf(codes.PermissionDenied, "token %q lacks the scope %s that this call needs", p.Name, rule.Scope)
	}
	if rule.EveryNamespace && !p.Grants.AllNamespaces() {
		return status.Errorf(codes.PermissionDenied, "token %q is limited to some namespaces; this call needs a token for every namespace (*)", p.Name)
	}
	return nil
}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	ctx = NewContext(ctx, p)
	if p.Name != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, PrincipalMetadata, p.Name)
	}
	return ctx
}

// Unary is the interceptor of unary calls.
func (a *Authenticator) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	rule, p, err := a.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := checkRequest(rule, p, req); err != nil {
		return nil, err
	}
	ctx = withPrincipal(ctx, p)
	if !rule.Mutation {
		return h(ctx, req)
	}
	return a.audited(ctx, info.FullMethod, rule, p, req, h)
}

// audited records the call before carrying it out (so no mutation escapes the trail, even if
// the gateway dies during it) and its outcome after.
func (a *Authenticator) audited(ctx context.Context, method string, rule Rule, p Principal, req any, h grpc.UnaryHandler) (any, error) {
	ev := store.AuditEvent{TokenID: p.TokenID, TokenName: p.Name, Method: method, Resource: resourceOf(req)}
	if ev.TokenName == "" {
		ev.TokenName = "(login code)"
	}
	if rule.Namespaced {
		ev.Namespace = RequestNamespace(req)
	}
	id, err := a.cfg.Store.StartAudit(ctx, ev)
	if err != nil {
		a.log.Warn("cannot record an audit event; refusing the call", "method", method, "error", err)
		return nil, status.Error(codes.Unavailable, "cannot record the call in the audit trail: the database is unreachable; retry")
	}
	resp, err := h(ctx, req)
	resource := ""
	if err == nil {
		resource = resourceOf(resp)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := a.cfg.Store.FinishAudit(fctx, id, CodeName(status.Code(err)), resource); ferr != nil {
		a.log.Warn("cannot record the outcome of an audited call", "audit_id", id, "method", method, "error", ferr)
	}
	return resp, err
}

// Stream is the interceptor of streaming calls (WatchRun). The namespace is checked on the
// request, the first message received.
func (a *Authenticator) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	rule, p, err := a.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if rule.Mutation {
		return status.Errorf(codes.Internal, "auth: streaming mutation %s has no audit path", info.FullMethod)
	}
	return h(srv, &checkedStream{ServerStream: ss, ctx: withPrincipal(ss.Context(), p), rule: rule, p: p})
}

type checkedStream struct {
	grpc.ServerStream
	ctx     context.Context
	rule    Rule
	p       Principal
	checked bool
}

func (s *checkedStream) Context() context.Context { return s.ctx }

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if !s.checked {
		s.checked = true
		if err := checkRequest(s.rule, s.p, m); err != nil {
			return err
		}
	}
	return nil
}

// resourceFields are the fields that name what a request or response is about, in the
// order they are joined into an audit event's resource.
var resourceFields = []protoreflect.Name{"name", "workflow", "run_id", "id", "task_id", "version"}

// resourceOf names what a message is about from its identifying fields (never from a
// free-text or secret field): "etl", "run 0190…", or a nested workflow, run or token.
func resourceOf(m any) string {
	msg, ok := m.(proto.Message)
	if !ok || msg == nil {
		return ""
	}
	r := msg.ProtoReflect()
	if !r.IsValid() {
		return ""
	}
	fields := r.Descriptor().Fields()
	var parts []string
	for _, name := range resourceFields {
		f := fields.ByName(name)
		if f == nil || f.IsList() || f.IsMap() || !r.Has(f) {
			continue
		}
		switch f.Kind() {
		case protoreflect.StringKind, protoreflect.Int64Kind, protoreflect.Int32Kind:
			parts = append(parts, fmt.Sprintf("%s=%v", name, r.Get(f).Interface()))
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, " ")
	}
	for _, nested := range []protoreflect.Name{"workflow", "run", "token", "dead_letter", "secret"} {
		f := fields.ByName(nested)
		if f != nil && f.Kind() == protoreflect.MessageKind && !f.IsList() && r.Has(f) {
			return resourceOf(r.Get(f).Message().Interface())
		}
	}
	return ""
}

// CodeName is a gRPC code's canonical name (NOT_FOUND, not NotFound), as audit events record
// outcomes.
func CodeName(c codes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range c.String() {
		upper := r >= 'A' && r <= 'Z'
		if upper && prevLower {
			b.WriteByte('_')
		}
		prevLower = !upper
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
