package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ReloadCheckInterval is how often, at most, a certificate/key pair's files are looked at
// again (on a handshake) to pick up a renewed certificate without a restart.
const ReloadCheckInterval = time.Second

// ServerOptions configure ServerConfig.
type ServerOptions struct {
	// CertFile and KeyFile are the server's certificate (chain) and key, PEM (required).
	CertFile, KeyFile string
	// ClientCAFile, when set, makes client certificates required: a client must present one
	// signed by a CA in this file, or the handshake fails.
	ClientCAFile string
	// MinVersion is the lowest TLS version accepted; zero means TLS 1.2 (1.3 is preferred
	// whenever the client offers it).
	MinVersion uint16
}

// ServerConfig loads a server's TLS configuration. The key pair is reloaded from its files
// when they change (checked at most every ReloadCheckInterval, on a handshake); the client
// CA is read once.
func ServerConfig(o ServerOptions) (*tls.Config, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tlsconf: a server needs a certificate and a key file")
	}
	src, err := newKeyPairSource(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     minVersion(o.MinVersion),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return src.get() },
	}
	if o.ClientCAFile != "" {
		pool, err := LoadCertPool(o.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientOptions configure ClientConfig.
type ClientOptions struct {
	// CAFile holds the CA certificates the server's certificate must chain to (required; the
	// system roots are not used).
	CAFile string
	// CertFile and KeyFile, when set, are the client certificate presented to the server.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry (a DNS SAN), whatever
	// address was dialed. Empty: the dialed host is verified (etcd, public endpoints).
	ServerName string
	// ServerRole, when set, is the role the server certificate's identity must have.
	ServerRole Role
	// MinVersion; zero means TLS 1.2.
	MinVersion uint16
}

// ClientConfig loads a client's TLS configuration. A client key pair is reloaded from its
// files when they change, like a server's.
func ClientConfig(o ClientOptions) (*tls.Config, error) {
	if o.CAFile == "" {
		return nil, errors.New("tlsconf: a client needs the CA file that issued the server's certificate")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("tlsconf: a client certificate needs both its certificate and its key file")
	}
	pool, err := LoadCertPool(o.CAFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion(o.MinVersion), RootCAs: pool, ServerName: o.ServerName}
	if o.CertFile != "" {
		src, err := newKeyPairSource(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return src.get() }
	}
	if o.ServerRole != "" {
		want := o.ServerRole
		// Runs after the standard verification (chain and name) succeeded.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			id, err := IdentityFromConnState(cs)
			if err != nil {
				return fmt.Errorf("server certificate: %w", err)
			}
			if id.Role != want {
				return fmt.Errorf("tlsconf: the server certificate is %s, not a %s", id, want)
			}
			return nil
		}
	}
	return cfg, nil
}

func minVersion(v uint16) uint16 {
	if v == 0 {
		return tls.VersionTLS12
	}
	return v
}

// LoadCertPool reads every certificate of a PEM file into a pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// keyPairSource serves a certificate/key pair from files and reloads it when either file
// changes (modification time or size). A pair that fails to load (a renewal half-written)
// keeps the previous one in use until the files are consistent again.
type keyPairSource struct {
	certFile, keyFile string
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

func newKeyPairSource(certFile, keyFile string) (*keyPairSource, error) {
	s := &keyPairSource{certFile: certFile, keyFile: keyFile, now: time.Now}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.checked = s.now()
	return s, nil
}

func (s *keyPairSource) load() error {
	cs, err1 := stampOf(s.certFile)
	ks, err2 := stampOf(s.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("tlsconf: load %s and %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert, s.stamp = &pair, [2]fileStamp{cs, ks}
	return nil
}

func (s *keyPairSource) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.checked) >= ReloadCheckInterval {
		s.checked = now
		cs, err1 := stampOf(s.certFile)
		ks, err2 := stampOf(s.keyFile)
		if err1 == nil && err2 == nil && [2]fileStamp{cs, ks} != s.stamp {
			_ = s.load() // on failure the previous pair stays
		}
	}
	return s.cert, nil
}
