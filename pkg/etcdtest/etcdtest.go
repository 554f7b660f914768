package etcdtest

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-io/cairn/pkg/etcdlocal"
)

// Server is an embedded etcd started for one test.
type Server struct {
	srv *etcdlocal.Server
}

// Start starts an embedded etcd on free loopback ports; it is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := etcdlocal.Start(etcdlocal.Config{Dir: t.TempDir(), NoFsync: true})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(srv.Close)
	return &Server{srv: srv}
}

// Endpoints returns the client URLs of the server.
func (s *Server) Endpoints() []string { return s.srv.Endpoints() }

// Stop stops the server before the test ends (to test losing etcd). Idempotent.
func (s *Server) Stop() { s.srv.Close() }

// Client returns a new client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   s.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// New starts a server and returns a client of it.
func New(t testing.TB) *clientv3.Client {
	t.Helper()
	return Start(t).Client(t)
}
