package gatewaytest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// pki is the test's CA with the stand-in leader's and the gateway's certificates.
type pki struct {
	dir                     *tlsconf.Dir
	leaderCert, leaderKey   string
	gatewayCert, gatewayKey string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	d, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "tls"), tlsconf.CAOptions{CommonName: "gatewaytest CA"})
	if err != nil {
		t.Fatalf("gatewaytest: CA: %v", err)
	}
	p := &pki{dir: d}
	if p.leaderCert, p.leaderKey, err = d.Issue("scheduler", tlsconf.CertRequest{
		Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "gatewaytest"}, DNSNames: []string{"cairn-scheduler"}}); err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	if p.gatewayCert, p.gatewayKey, err = d.Issue("gateway", tlsconf.CertRequest{
		Identity: tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "gatewaytest"},
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}); err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	return p
}

func (p *pki) leaderCreds(t testing.TB) credentials.TransportCredentials {
	t.Helper()
	cfg, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: p.leaderCert, KeyFile: p.leaderKey, ClientCAFile: p.dir.CAFile()})
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	return credentials.NewTLS(cfg)
}

// onlyGateways lets only gateway certificates call the stand-in leader, as the scheduler's
// authorization does.
func onlyGateways(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	id, err := tlsconf.IdentityFromPeer(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if id.Role != tlsconf.RoleGateway {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not a gateway", id)
	}
	return h(ctx, req)
}

// ClientTLS is a client's TLS configuration for the gateway's public listeners (with
// Options.PublicTLS): it trusts the test's CA.
func (c *Cluster) ClientTLS() *tls.Config {
	c.t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: c.CAFile})
	if err != nil {
		c.t.Fatalf("gatewaytest: %v", err)
	}
	return cfg
}

// HTTPClient is an HTTP client for HTTPURL (TLS with Options.PublicTLS).
func (c *Cluster) HTTPClient() *http.Client {
	if !c.publicTLS {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientTLS(), ForceAttemptHTTP2: true}}
}
