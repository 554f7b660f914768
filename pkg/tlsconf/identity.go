package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// TrustDomain is the host part of every Cairn identity URI: spiffe://cairn/<role>/<name>.
const TrustDomain = "cairn"

// Role is what an internal component is allowed to do; it is the first path element of the
// identity URI.
type Role string

// The roles of Cairn's internal components.
const (
	RoleScheduler Role = "scheduler"
	RoleGateway   Role = "gateway"
	RoleWorker    Role = "worker"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleScheduler, RoleGateway, RoleWorker}

// ParseRole checks s names a role.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("tlsconf: unknown role %q (want scheduler, gateway or worker)", s)
}

// namePattern is what an identity name may look like: the worker-id rule, so that a worker's
// certificate name can be its worker id.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Identity is who an internal certificate says its holder is.
type Identity struct {
	Role Role
	Name string
}

// Validate checks the role and the name.
func (id Identity) Validate() error {
	if _, err := ParseRole(string(id.Role)); err != nil {
		return err
	}
	if !namePattern.MatchString(id.Name) {
		return fmt.Errorf("tlsconf: identity name %q must match %s", id.Name, namePattern)
	}
	return nil
}

// URI is the identity's URI SAN, spiffe://cairn/<role>/<name>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + string(id.Role) + "/" + id.Name}
}

// String is the URI's text.
func (id Identity) String() string { return id.URI().String() }

// Errors of the identity functions.
var (
	// ErrNoTLS: the connection is not TLS (a plaintext server in insecure mode).
	ErrNoTLS = errors.New("tlsconf: the connection does not use TLS")
	// ErrNoClientCert: the connection is TLS but the peer presented no verified certificate.
	ErrNoClientCert = errors.New("tlsconf: the peer presented no verified certificate")
	// ErrNoIdentity: the certificate carries no (or more than one) Cairn identity URI.
	ErrNoIdentity = errors.New("tlsconf: the certificate carries no Cairn identity (URI SAN spiffe://cairn/<role>/<name>)")
)

// IdentityFromCert returns the identity in c's URI SANs. Exactly one URI of the trust
// domain must be present and well formed; anything else is ErrNoIdentity.
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, ErrNoClientCert
	}
	var found []Identity
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" || u.Host != TrustDomain {
			continue
		}
		id, err := identityFromURI(u)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrNoIdentity, err)
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return Identity{}, ErrNoIdentity
	case 1:
		return found[0], nil
	}
	return Identity{}, fmt.Errorf("%w: %d identity URIs (want one)", ErrNoIdentity, len(found))
}

func identityFromURI(u *url.URL) (Identity, error) {
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return Identity{}, fmt.Errorf("%q: only spiffe://cairn/<role>/<name> is accepted", u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 {
		return Identity{}, fmt.Errorf("%q: the path must be /<role>/<name>", u)
	}
	id := Identity{Role: Role(parts[0]), Name: parts[1]}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%q: %v", u, err)
	}
	return id, nil
}

// IdentityFromConnState returns the identity of the peer's verified leaf certificate.
func IdentityFromConnState(cs tls.ConnectionState) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNoClientCert
	}
	return IdentityFromCert(cs.VerifiedChains[0][0])
}

// IdentityFromPeer returns the identity of the gRPC peer of ctx (a server handler's
// context): ErrNoTLS on a plaintext connection, ErrNoClientCert without a verified client
// certificate, ErrNoIdentity when the certificate names nobody.
func IdentityFromPeer(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, ErrNoTLS
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, ErrNoTLS
	}
	return IdentityFromConnState(info.State)
}
