// Package authz decides who may call the scheduler's gRPC services, from the caller's
// client certificate, in one interceptor for every call (unary and streaming):
//
//	service                    allowed role (spiffe://cairn/<role>/<name>)
//	cairn.v1.SchedulerService  gateway
//	cairn.v1.WorkerService     worker
//
// A call without a verified client certificate, or whose certificate names nobody, is
// UNAUTHENTICATED; a certificate of another role is PERMISSION_DENIED. (The TLS handshake
// already refused clients without a certificate of the cluster's CA; this covers what the
// handshake cannot know: which service a certificate may use.) A service missing from the
// table is refused to everyone, so a service registered later is closed until a rule opens it.
//
// The caller (its identity, and for a gateway the end user it acts for, the cairn-principal
// metadata) is put in the handler's context: From, By. cairn-principal is read only from a
// gateway's connection; from anyone else it is ignored, so a worker cannot claim to act for
// a user.
//
// Insecure mode (the scheduler's --insecure, loopback only) accepts plaintext connections
// without identity; their cairn-principal is taken as given, since everything on loopback is
// trusted in that mode anyway.
//
// The tests (authz_test.go, and tests/e2e/security_test.go over the real binaries) enumerate
// every method of both services from their descriptors.
package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// PrincipalKey is the gRPC metadata key a gateway sets on each forwarded mutation: the name
// of the token (the user) it acts for.
const PrincipalKey = "cairn-principal"

// maxPrincipal bounds a principal's length.
const maxPrincipal = 256

// Rules maps each gRPC service to the only role allowed to call it.
var Rules = map[string]tlsconf.Role{
	cairnv1.SchedulerService_ServiceDesc.ServiceName: tlsconf.RoleGateway,
	cairnv1.WorkerService_ServiceDesc.ServiceName:    tlsconf.RoleWorker,
}

// Caller is who makes a call.
type Caller struct {
	// Identity is the client certificate's identity; zero in insecure mode.
	Identity tlsconf.Identity
	// Principal is the end user a gateway acts for (cairn-principal), "" when none was sent.
	Principal string
}

type ctxKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Caller) context.Context { return context.WithValue(ctx, ctxKey{}, c) }

// From returns the caller the interceptor put in ctx.
func From(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(ctxKey{}).(Caller)
	return c, ok
}

// By describes the caller of ctx for logs and audit: the principal and the gateway it came
// through ("alice via gateway gw-1"), the identity alone, or "unauthenticated" (insecure mode
// without a principal).
func By(ctx context.Context) string {
	c, ok := From(ctx)
	if !ok {
		return "unknown"
	}
	id := ""
	if c.Identity != (tlsconf.Identity{}) {
		id = string(c.Identity.Role) + " " + c.Identity.Name
	}
	switch {
	case c.Principal != "" && id != "":
		return c.Principal + " via " + id
	case c.Principal != "":
		return c.Principal
	case id != "":
		return id
	}
	return "unauthenticated"
}

// Authorizer is the interceptor pair.
type Authorizer struct {
	// Insecure accepts plaintext connections without identity (loopback-only mode).
	Insecure bool
}

// Authorize checks the caller of ctx for fullMethod and returns ctx with the Caller.
func (a Authorizer) Authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	service := serviceOf(fullMethod)
	want, ok := Rules[service]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "%s: no role may call service %q", fullMethod, service)
	}
	id, err := tlsconf.IdentityFromPeer(ctx)
	switch {
	case errors.Is(err, tlsconf.ErrNoTLS) && a.Insecure:
		return With(ctx, Caller{Principal: principal(ctx)}), nil
	case err != nil:
		return nil, status.Errorf(codes.Unauthenticated, "%s: a client certificate of the cluster's CA naming a %s (spiffe://cairn/%s/<name>) is required: %v",
			fullMethod, want, want, err)
	case id.Role != want:
		return nil, status.Errorf(codes.PermissionDenied, "%s: %s may not call %s (only a %s may)", fullMethod, id, service, want)
	}
	c := Caller{Identity: id}
	if id.Role == tlsconf.RoleGateway {
		c.Principal = principal(ctx)
	}
	return With(ctx, c), nil
}

// principal reads cairn-principal, keeping only a printable value of bounded length.
func principal(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(PrincipalKey)
	if len(vals) != 1 {
		return ""
	}
	p := vals[0]
	if len(p) > maxPrincipal || strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "(invalid principal)"
	}
	return p
}

// serviceOf returns "pkg.Service" of "/pkg.Service/Method".
func serviceOf(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// Unary is the unary server interceptor.
func (a Authorizer) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := a.Authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// Stream is the stream server interceptor.
func (a Authorizer) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := a.Authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &stream{ServerStream: ss, ctx: ctx})
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// String is for debugging.
func (c Caller) String() string { return fmt.Sprintf("%s (principal %q)", c.Identity, c.Principal) }
