package etcdlocal

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// Config describes an embedded etcd server.
type Config struct {
	// Dir holds the member's data. It must be private to this server.
	Dir string
	// ClientURL is where clients connect, e.g. "http://127.0.0.1:2379". Empty means a free
	// loopback port.
	ClientURL string
	// PeerURL is the raft peer address. Empty means a free loopback port.
	PeerURL string
	// NoFsync trades durability for speed; for tests only.
	NoFsync bool
	// StartTimeout bounds how long Start waits for the server to be ready (default 30s).
	StartTimeout time.Duration
	// LogFile receives etcd's own log (warnings and errors). Empty: etcd logs only fatal
	// errors, to stderr; its routine shutdown messages are logged as errors and would only
	// be noise in tests.
	LogFile string
	// TLS, when set, serves clients over TLS (https:// endpoints) with this certificate and,
	// with ClientCAFile, requires client certificates signed by that CA.
	TLS *TLS
}

// TLS are the files of an embedded etcd's client TLS.
type TLS struct {
	CertFile, KeyFile string
	ClientCAFile      string
}

// Server is a running embedded etcd.
type Server struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// Start starts the server and waits until it serves clients.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("etcdlocal: Dir is required")
	}
	clientURL, err := loopbackURL(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: client url: %w", err)
	}
	peerURL, err := loopbackURL(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: peer url: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "cairn-dev"
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.LogLevel = "fatal"
	if cfg.LogFile != "" {
		ec.LogLevel = "warn"
		ec.LogOutputs = []string{cfg.LogFile}
	}
	if cfg.TLS != nil {
		clientURL.Scheme = "https"
		ec.ListenClientUrls = []url.URL{*clientURL}
		ec.AdvertiseClientUrls = []url.URL{*clientURL}
		ec.ClientTLSInfo = transport.TLSInfo{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			TrustedCAFile: cfg.TLS.ClientCAFile, ClientCertAuth: cfg.TLS.ClientCAFile != ""}
	}
	ec.UnsafeNoFsync = cfg.NoFsync
	// Keep revisions compacted so a long dev session does not grow without bound.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: start etcd in %s: %w", cfg.Dir, err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdlocal: etcd failed during start-up: %w", err)
	case <-time.After(timeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcdlocal: etcd not ready after %s", timeout)
	}
	s := &Server{etcd: e}
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	for _, l := range e.Clients {
		s.endpoints = append(s.endpoints, scheme+l.Addr().String())
	}
	return s, nil
}

// Endpoints returns the client URLs, ready for clientv3.Config.Endpoints.
func (s *Server) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Err reports a fatal server error after start-up.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the server and waits for it. Safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(s.etcd.Close)
}

func loopbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = "http://127.0.0.1:0"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%q: only http:// is supported", raw)
	}
	return u, nil
}
