package framework

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// SchedulerServerName is the name every scheduler certificate of a cluster carries and every
// client verifies.
const SchedulerServerName = "cairn-scheduler"

// PKI is a cluster's certificate authority and the certificates it issued, in a private
// directory (0700, keys 0600) of the test. Every process of a cluster runs with mutual TLS
// unless Options.Insecure.
type PKI struct {
	Dir *tlsconf.Dir

	t      testing.TB
	mu     sync.Mutex
	issued map[string][2]string // base → cert, key
}

func newPKI(t testing.TB, dir string) *PKI {
	t.Helper()
	d, err := tlsconf.CreateDir(dir, tlsconf.CAOptions{CommonName: "Cairn e2e CA"})
	if err != nil {
		t.Fatalf("framework: CA: %v", err)
	}
	return &PKI{Dir: d, t: t, issued: map[string][2]string{}}
}

// CAFile is the CA certificate every component trusts.
func (p *PKI) CAFile() string { return p.Dir.CAFile() }

// Cert returns the certificate and key files of identity role/name, issuing them on first
// use. Schedulers get the DNS name SchedulerServerName; schedulers and gateways the IP
// 127.0.0.1 and the name localhost (the gateway's public listeners are dialed by address).
func (p *PKI) Cert(role tlsconf.Role, name string) (certFile, keyFile string) {
	p.t.Helper()
	base := string(role) + "-" + name
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.issued[base]; ok {
		return f[0], f[1]
	}
	req := tlsconf.CertRequest{Identity: tlsconf.Identity{Role: role, Name: name}}
	switch role {
	case tlsconf.RoleScheduler:
		req.DNSNames = []string{SchedulerServerName}
	case tlsconf.RoleGateway:
		req.DNSNames, req.IPs = []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	cert, key, err := p.Dir.Issue(base, req)
	if err != nil {
		p.t.Fatalf("framework: issue %s: %v", base, err)
	}
	p.issued[base] = [2]string{cert, key}
	return cert, key
}

// SchedulerCreds are the credentials of a client with identity role/name dialing a scheduler:
// it presents that certificate and verifies the scheduler's as SchedulerServerName.
func (p *PKI) SchedulerCreds(role tlsconf.Role, name string) credentials.TransportCredentials {
	p.t.Helper()
	cert, key := p.Cert(role, name)
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: p.CAFile(), CertFile: cert, KeyFile: key,
		ServerName: SchedulerServerName, ServerRole: tlsconf.RoleScheduler})
	if err != nil {
		p.t.Fatalf("framework: client TLS: %v", err)
	}
	return credentials.NewTLS(cfg)
}

// PublicTLS is the TLS configuration of a client of the gateway's public listeners.
func (p *PKI) PublicTLS() *tls.Config {
	p.t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: p.CAFile()})
	if err != nil {
		p.t.Fatalf("framework: client TLS: %v", err)
	}
	return cfg
}

// testClientName is the gateway identity the test itself uses to call a leader's
// SchedulerService directly (Apply and StartRun without a gateway).
const testClientName = "e2e-test"

// schedulerEnv is the TLS part of a scheduler's environment.
func (c *Cluster) schedulerEnv(env map[string]string, id string) {
	if c.Opts.Insecure {
		env["CAIRN_INSECURE"] = "true"
		return
	}
	cert, key := c.PKI.Cert(tlsconf.RoleScheduler, id)
	env["CAIRN_TLS_CERT"], env["CAIRN_TLS_KEY"], env["CAIRN_TLS_CLIENT_CA"] = cert, key, c.PKI.CAFile()
	env["CAIRN_SCHEDULER_SERVER_NAME"] = SchedulerServerName
}

// clientEnv is the TLS part of a worker's or the gateway's environment.
func (c *Cluster) clientEnv(env map[string]string, role tlsconf.Role, id string) {
	if c.Opts.Insecure {
		env["CAIRN_INSECURE"] = "true"
		return
	}
	cert, key := c.PKI.Cert(role, id)
	env["CAIRN_TLS_CERT"], env["CAIRN_TLS_KEY"], env["CAIRN_TLS_CA"] = cert, key, c.PKI.CAFile()
	env["CAIRN_SCHEDULER_SERVER_NAME"] = SchedulerServerName
	if role == tlsconf.RoleGateway {
		env["CAIRN_PUBLIC_TLS_CERT"], env["CAIRN_PUBLIC_TLS_KEY"] = cert, key
	}
}

// DialGateway connects to the gateway's public gRPC API (TLS, verified against the CA) and
// calls with the admin token.
func (c *Cluster) DialGateway() *grpc.ClientConn {
	c.t.Helper()
	creds := insecure.NewCredentials()
	if !c.Opts.Insecure {
		creds = credentials.NewTLS(c.PKI.PublicTLS())
	}
	return dialWith(c.t, c.Gateway.GRPCAddr, creds,
		grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: AdminToken, Insecure: c.Opts.Insecure}))
}

// DialScheduler connects to a scheduler's gRPC server as identity role/name.
func (c *Cluster) DialScheduler(addr string, role tlsconf.Role, name string) *grpc.ClientConn {
	c.t.Helper()
	creds := insecure.NewCredentials()
	if !c.Opts.Insecure {
		creds = c.PKI.SchedulerCreds(role, name)
	}
	return dialWith(c.t, addr, creds)
}

// GatewayURL is the base URL of the gateway's REST API (https:// unless Options.Insecure).
func (c *Cluster) GatewayURL() string {
	if c.Opts.Insecure {
		return "http://" + c.Gateway.HTTPAddr
	}
	return "https://" + c.Gateway.HTTPAddr
}

func dialWith(t testing.TB, addr string, creds credentials.TransportCredentials, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(creds))...)
	if err != nil {
		t.Fatalf("framework: dial %s: %v", addr, err)
	}
	return conn
}

// privateDir makes a 0700 directory for the cluster's certificates.
func privateDir(t testing.TB, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("framework: %v", err)
	}
	return dir
}

// SharedDir returns a directory that the workers' shell tasks may read and write (mode
// 0777), for tests whose tasks exchange files with the test: tasks may run as another user
// (Options.TaskUser), who cannot enter the test's private temporary directories. It is
// removed when the test ends.
func (c *Cluster) SharedDir() string {
	c.t.Helper()
	return c.sharedSubdir(fmt.Sprintf("files-%d", sharedSeq.Add(1)), 0o777)
}

var sharedSeq atomic.Int64

// sharedSubdir makes name with mode under the cluster's shared root (a directory of the
// system's temporary directory, traversable by every user).
func (c *Cluster) sharedSubdir(name string, mode os.FileMode) string {
	c.t.Helper()
	if c.shared == "" {
		dir, err := os.MkdirTemp("", "cairn-e2e-shared-")
		if err != nil {
			c.t.Fatalf("framework: %v", err)
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			c.t.Fatalf("framework: %v", err)
		}
		c.t.Cleanup(func() { _ = os.RemoveAll(dir) })
		c.shared = dir
	}
	dir := filepath.Join(c.shared, name)
	if err := os.MkdirAll(dir, mode); err != nil {
		c.t.Fatalf("framework: %v", err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		c.t.Fatalf("framework: %v", err)
	}
	return dir
}
