package forward_test

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/gateway/internal/forward"
)

// countingPeer counts the calls that reached it.
type countingPeer struct {
	peer
	calls atomic.Int64
}

func (p *countingPeer) ApplyWorkflow(ctx context.Context, req *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	p.calls.Add(1)
	return p.peer.ApplyWorkflow(ctx, req)
}

func serveTLS(t *testing.T, d *tlsconf.Dir, base string, req tlsconf.CertRequest, p cairnv1.SchedulerServiceServer) string {
	t.Helper()
	cert, key, err := d.Issue(base, req)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: cert, KeyFile: key, ClientCAFile: d.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	cairnv1.RegisterSchedulerServiceServer(s, p)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// TestForwardVerifiesTheLeaderName: etcd names as leader an address whose certificate is of
// the right CA and role but not for the fixed scheduler name. The gateway refuses it: no
// mutation reaches it; a leader with the right certificate then gets the call.
func TestForwardVerifiesTheLeaderName(t *testing.T) {
	d, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "tls"), tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gwCert, gwKey, err := d.Issue("gateway", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "gw"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: d.CAFile(), CertFile: gwCert, KeyFile: gwKey,
		ServerName: "cairn-scheduler", ServerRole: tlsconf.RoleScheduler, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	impostor := &countingPeer{peer: peer{name: "impostor"}}
	evil := serveTLS(t, d, "evil", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "evil"},
		DNSNames: []string{"evil.example"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}, impostor)

	etcd := etcdtest.New(t)
	f, err := forward.New(forward.Config{Client: etcd, Timeout: time.Second, Credentials: credentials.NewTLS(tc), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	el := campaign(t, etcd, evil)
	for f.Leader().Value != evil {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := apply(f); status.Code(err) != codes.Unavailable {
		t.Fatalf("a leader with a certificate for another name: %v, want UNAVAILABLE", err)
	}
	if n := impostor.calls.Load(); n != 0 {
		t.Fatalf("the impostor received %d calls", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.CheckLeader(ctx); err == nil {
		t.Error("readiness accepted the impostor as leader")
	}

	real := serveTLS(t, d, "scheduler", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s1"},
		DNSNames: []string{"cairn-scheduler"}}, &peer{name: "real"})
	el.Stop()
	campaign(t, etcd, real)
	for f.Leader().Value != real {
		time.Sleep(5 * time.Millisecond)
	}
	if name, err := apply(f); err != nil || name != "real" {
		t.Fatalf("the real leader: %q, %v", name, err)
	}
}

// TestPlaintextOnlyToLoopback: without credentials (insecure mode) a leader address off
// loopback is never dialed; the call fails at once, naming why.
func TestPlaintextOnlyToLoopback(t *testing.T) {
	etcd := etcdtest.New(t)
	f, err := forward.New(forward.Config{Client: etcd, Timeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	campaign(t, etcd, "10.255.255.1:7071") // refused before any dial: no packet leaves
	for f.Leader().IsZero() {
		time.Sleep(5 * time.Millisecond)
	}
	_, err = apply(f)
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "not on loopback") {
		t.Fatalf("a plaintext leader off loopback: %v", err)
	}
}
