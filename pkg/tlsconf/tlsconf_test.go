package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// files writes ca.pem and one issued pair named base into a fresh directory.
type files struct {
	dir, ca, cert, key string
}

func issue(t *testing.T, ca *CA, req CertRequest, base string) files {
	t.Helper()
	dir := t.TempDir()
	caPath, _, err := ca.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := kp.WriteFiles(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	return files{dir: dir, ca: caPath, cert: cert, key: key}
}

func schedulerReq() CertRequest {
	return CertRequest{Identity: Identity{RoleScheduler, "s1"}, DNSNames: []string{"cairn-scheduler"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}}
}

// handshake runs a TLS handshake over an in-memory pipe plus one message from the server,
// so that an error the server raises after the client's part (TLS 1.3 client certificates)
// reaches the client too. It returns the server's view of the connection.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	type res struct {
		cs  tls.ConnectionState
		err error
	}
	done := make(chan res, 1)
	go func() {
		s := tls.Server(sc, server)
		err := s.Handshake()
		if err == nil {
			_, err = s.Write([]byte("ok"))
		}
		done <- res{s.ConnectionState(), err}
		_ = s.Close()
	}()
	c := tls.Client(cc, client)
	cerr := c.Handshake()
	if cerr == nil {
		buf := make([]byte, 2)
		_, cerr = io.ReadFull(c, buf)
	}
	_ = cc.Close() // not c.Close: its close_notify would wait for a reader that is gone
	r := <-done
	return r.cs, r.err, cerr
}

func serverConfig(t *testing.T, f files, clientCA string) *tls.Config {
	t.Helper()
	cfg, err := ServerConfig(ServerOptions{CertFile: f.cert, KeyFile: f.key, ClientCAFile: clientCA})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func clientConfig(t *testing.T, o ClientOptions) *tls.Config {
	t.Helper()
	cfg, err := ClientConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMutualTLSAndIdentity(t *testing.T) {
	ca := newCA(t)
	srv := issue(t, ca, schedulerReq(), "scheduler")
	cli := issue(t, ca, CertRequest{Identity: Identity{RoleWorker, "w-1"}}, "worker")
	cs, serr, cerr := handshake(t, serverConfig(t, srv, srv.ca),
		clientConfig(t, ClientOptions{CAFile: cli.ca, CertFile: cli.cert, KeyFile: cli.key, ServerName: "cairn-scheduler", ServerRole: RoleScheduler}))
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: server %v, client %v", serr, cerr)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("negotiated version %x, want TLS 1.3", cs.Version)
	}
	id, err := IdentityFromConnState(cs)
	if err != nil || id != (Identity{RoleWorker, "w-1"}) {
		t.Fatalf("identity = %v, %v; want worker w-1", id, err)
	}
	if got := id.String(); got != "spiffe://cairn/worker/w-1" {
		t.Errorf("URI %q", got)
	}
}

func TestClientCertOfAnotherCARefused(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	srv := issue(t, ca, schedulerReq(), "scheduler")
	foreign := issue(t, other, CertRequest{Identity: Identity{RoleGateway, "g"}}, "gateway")
	_, serr, cerr := handshake(t, serverConfig(t, srv, srv.ca),
		clientConfig(t, ClientOptions{CAFile: srv.ca, CertFile: foreign.cert, KeyFile: foreign.key, ServerName: "cairn-scheduler"}))
	if serr == nil || cerr == nil {
		t.Fatalf("a client certificate of another CA was accepted (server %v, client %v)", serr, cerr)
	}
	if !strings.Contains(serr.Error(), "certificate") {
		t.Errorf("server error %q does not mention the certificate", serr)
	}
}

func TestClientWithoutCertRefused(t *testing.T) {
	ca := newCA(t)
	srv := issue(t, ca, schedulerReq(), "scheduler")
	_, serr, cerr := handshake(t, serverConfig(t, srv, srv.ca),
		clientConfig(t, ClientOptions{CAFile: srv.ca, ServerName: "cairn-scheduler"}))
	if serr == nil || cerr == nil {
		t.Fatalf("a client without a certificate was accepted (server %v, client %v)", serr, cerr)
	}
}

func TestServerCertOfAnotherCARefused(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	srv := issue(t, other, schedulerReq(), "scheduler")
	cli := issue(t, ca, CertRequest{Identity: Identity{RoleWorker, "w"}}, "worker")
	_, _, cerr := handshake(t, serverConfig(t, srv, ""),
		clientConfig(t, ClientOptions{CAFile: cli.ca, CertFile: cli.cert, KeyFile: cli.key, ServerName: "cairn-scheduler"}))
	var uerr x509.UnknownAuthorityError
	if !errors.As(cerr, &uerr) {
		t.Fatalf("client error = %v, want an unknown authority", cerr)
	}
}

func TestServerNameNotAddressIsVerified(t *testing.T) {
	ca := newCA(t)
	// A certificate of the right CA and role, for the dialed address, but another name: an
	// impostor that got a leader address into etcd.
	impostor := issue(t, ca, CertRequest{Identity: Identity{RoleScheduler, "evil"}, DNSNames: []string{"evil.example"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}}, "scheduler")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s := tls.Server(c, serverConfig(t, impostor, ""))
				_ = s.Handshake()
				_ = s.Close()
			}()
		}
	}()
	cfg := clientConfig(t, ClientOptions{CAFile: impostor.ca, ServerName: "cairn-scheduler"})
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err == nil {
		conn.Close()
		t.Fatal("a server certificate for evil.example was accepted as cairn-scheduler")
	}
	var herr x509.HostnameError
	if !errors.As(err, &herr) {
		t.Fatalf("dial error = %v, want a host name mismatch", err)
	}
	// Control: the same certificate is valid for its address, so the refusal is the name's.
	cfg = clientConfig(t, ClientOptions{CAFile: impostor.ca})
	conn, err = tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("control: dialing by address (no fixed name) failed: %v", err)
	}
	conn.Close()
}

func TestServerRoleIsVerified(t *testing.T) {
	ca := newCA(t)
	// A gateway certificate that also lists the scheduler's DNS name.
	srv := issue(t, ca, CertRequest{Identity: Identity{RoleGateway, "g"}, DNSNames: []string{"cairn-scheduler"}}, "gateway")
	_, _, cerr := handshake(t, serverConfig(t, srv, ""),
		clientConfig(t, ClientOptions{CAFile: srv.ca, ServerName: "cairn-scheduler", ServerRole: RoleScheduler}))
	if cerr == nil || !strings.Contains(cerr.Error(), "not a scheduler") {
		t.Fatalf("client error = %v, want the role refused", cerr)
	}
}

func TestNoURISANNoIdentity(t *testing.T) {
	ca := newCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "worker-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, DNSNames: []string{"worker-1"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if id, err := IdentityFromCert(cert); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("IdentityFromCert = %v, %v; want ErrNoIdentity", id, err)
	}
	bad := map[string]string{
		"other trust domain": "spiffe://example.org/worker/w",
		"unknown role":       "spiffe://cairn/admin/w",
		"extra path":         "spiffe://cairn/worker/w/x",
		"bad name":           "spiffe://cairn/worker/-w",
		"query":              "spiffe://cairn/worker/w?x=1",
	}
	for what, raw := range bad {
		u, _ := url.Parse(raw)
		c := &x509.Certificate{URIs: []*url.URL{u}}
		if id, err := IdentityFromCert(c); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("%s (%s): identity %v, %v; want ErrNoIdentity", what, raw, id, err)
		}
	}
	two := &x509.Certificate{URIs: []*url.URL{Identity{RoleWorker, "a"}.URI(), Identity{RoleWorker, "b"}.URI()}}
	if _, err := IdentityFromCert(two); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("two identities: %v, want ErrNoIdentity", err)
	}
}

func TestWriteFilesModes(t *testing.T) {
	ca := newCA(t)
	dir := filepath.Join(t.TempDir(), "tls")
	if _, _, err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(CertRequest{Identity: Identity{RoleWorker, "w"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kp.WriteFiles(dir, "worker"); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{"": DirMode, "ca.pem": 0o644, "ca-key.pem": 0o600, "worker.pem": 0o644, "worker-key.pem": 0o600}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", filepath.Join(dir, name), fi.Mode().Perm(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries, want 4 (no temporary files left)", len(entries))
	}
	if err := CheckKeyFile(filepath.Join(dir, "worker-key.pem")); err != nil {
		t.Error(err)
	}
	if err := os.Chmod(filepath.Join(dir, "worker-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyFile(filepath.Join(dir, "worker-key.pem")); err == nil {
		t.Error("CheckKeyFile accepted a world-readable key")
	}
	// The CA loads back, and its key must match.
	if _, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, "worker-key.pem")); err == nil {
		t.Error("LoadCA accepted a key that is not the CA's")
	}
	if _, err := LoadCA(filepath.Join(dir, "worker.pem"), filepath.Join(dir, "worker-key.pem")); err == nil {
		t.Error("LoadCA accepted a leaf certificate")
	}
}

func TestVerifyPair(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	f := issue(t, ca, CertRequest{Identity: Identity{RoleWorker, "w"}, Validity: time.Hour}, "worker")
	if _, err := VerifyPair(ca.Cert, f.cert, f.key, time.Now(), time.Minute); err != nil {
		t.Fatalf("VerifyPair: %v", err)
	}
	if _, err := VerifyPair(other.Cert, f.cert, f.key, time.Now(), time.Minute); err == nil {
		t.Error("VerifyPair accepted a certificate of another CA")
	}
	if _, err := VerifyPair(ca.Cert, f.cert, f.key, time.Now(), 2*time.Hour); !errors.Is(err, ErrExpired) {
		t.Errorf("VerifyPair of a certificate expiring within minLeft: %v, want ErrExpired", err)
	}
}

func TestKeyPairReload(t *testing.T) {
	ca := newCA(t)
	f := issue(t, ca, CertRequest{Identity: Identity{RoleWorker, "old"}}, "worker")
	src, err := newKeyPairSource(f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		c, err := src.get()
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := name(); got != "old" {
		t.Fatalf("serving %q", got)
	}
	kp, err := ca.Issue(CertRequest{Identity: Identity{RoleWorker, "renewed"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kp.WriteFiles(f.dir, "worker"); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "old" {
		t.Fatalf("reloaded before ReloadCheckInterval: %q", got)
	}
	src.checked = src.checked.Add(-ReloadCheckInterval) // as if a second went by
	if got := name(); got != "renewed" {
		t.Fatalf("after a renewal: serving %q, want renewed", got)
	}
	// A half-written renewal (a key that is not the certificate's) keeps the last good pair.
	other, _ := ca.Issue(CertRequest{Identity: Identity{RoleWorker, "x"}})
	if err := WriteFile(f.key, other.KeyPEM, KeyFileMode); err != nil {
		t.Fatal(err)
	}
	src.checked = src.checked.Add(-ReloadCheckInterval)
	if got := name(); got != "renewed" {
		t.Fatalf("after a broken renewal: serving %q, want the previous pair", got)
	}
}

// TestIdentityFromPeer checks the gRPC side: the handler sees the client's identity, and a
// plaintext connection has none.
func TestIdentityFromPeer(t *testing.T) {
	ca := newCA(t)
	srv := issue(t, ca, schedulerReq(), "scheduler")
	cli := issue(t, ca, CertRequest{Identity: Identity{RoleGateway, "gw-1"}}, "gateway")
	seen := make(chan string, 1)
	handler := func(_ any, ss grpc.ServerStream) error {
		id, err := IdentityFromPeer(ss.Context())
		if err != nil {
			seen <- "error: " + err.Error()
		} else {
			seen <- id.String()
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverConfig(t, srv, srv.ca))), grpc.UnknownServiceHandler(handler))
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	ccfg := clientConfig(t, ClientOptions{CAFile: cli.ca, CertFile: cli.cert, KeyFile: cli.key,
		ServerName: "cairn-scheduler", ServerRole: RoleScheduler, MinVersion: tls.VersionTLS13})
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(ccfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/x.Y/Z")
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.RecvMsg(new(struct{}))
	if got := <-seen; got != "spiffe://cairn/gateway/gw-1" {
		t.Fatalf("the handler saw %q, want the gateway's identity", got)
	}
	if _, err := IdentityFromPeer(context.Background()); !errors.Is(err, ErrNoTLS) {
		t.Errorf("no peer: %v, want ErrNoTLS", err)
	}
}

func TestDirReuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls")
	d, created, err := LoadOrCreateDir(path, CAOptions{})
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateDir: created %v, %v", created, err)
	}
	req := CertRequest{Identity: Identity{RoleGateway, "dev"}, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	cert1, _, reused, err := d.Ensure("gateway", req)
	if err != nil || reused {
		t.Fatalf("first Ensure: reused %v, %v", reused, err)
	}
	before, _ := os.ReadFile(cert1)
	d2, created, err := LoadOrCreateDir(path, CAOptions{})
	if err != nil || created || !d2.CA.Cert.Equal(d.CA.Cert) {
		t.Fatalf("second LoadOrCreateDir: created %v, same CA %v, %v", created, d2.CA.Cert.Equal(d.CA.Cert), err)
	}
	if _, _, reused, err := d2.Ensure("gateway", req); err != nil || !reused {
		t.Fatalf("Ensure of a valid certificate: reused %v, %v", reused, err)
	}
	if after, _ := os.ReadFile(cert1); string(after) != string(before) {
		t.Error("a valid certificate was rewritten")
	}
	// Another name asked for: a new certificate.
	req.DNSNames = append(req.DNSNames, "gw.example")
	if _, _, reused, err := d2.Ensure("gateway", req); err != nil || reused {
		t.Fatalf("Ensure with a new name: reused %v, %v", reused, err)
	}
	// A CA of another directory invalidates the certificates it did not sign.
	d3, _ := CreateDir(path, CAOptions{})
	if _, _, reused, _ := d3.Ensure("gateway", req); reused {
		t.Error("a certificate of the replaced CA was reused")
	}
}

func TestServerCertificateWithoutIdentity(t *testing.T) {
	ca := newCA(t)
	kp, err := ca.Issue(CertRequest{DNSNames: []string{"db.internal"}, IPs: []net.IP{net.ParseIP("10.0.0.5")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IdentityFromCert(kp.Cert); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("a plain server certificate names %v", err)
	}
	if kp.Cert.Subject.CommonName != "db.internal" || len(kp.Cert.ExtKeyUsage) != 1 || kp.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("subject %s, usage %v", kp.Cert.Subject, kp.Cert.ExtKeyUsage)
	}
	if _, err := ca.Issue(CertRequest{}); err == nil {
		t.Error("a certificate naming nothing at all was issued")
	}
}
