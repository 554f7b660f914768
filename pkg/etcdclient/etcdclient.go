// Package etcdclient builds the etcd client every Cairn binary uses, from one set of
// settings: endpoints, TLS (a CA to verify etcd by, a client certificate) and user/password
// authentication. Flags adds the matching flags to a binary's flag set, so scheduler, gateway
// and worker spell them the same way:
//
//	--etcd-ca            CAIRN_ETCD_CA             CA file that signed etcd's server certificate
//	--etcd-cert          CAIRN_ETCD_CERT           client certificate (etcd --client-cert-auth)
//	--etcd-key           CAIRN_ETCD_KEY            its key
//	--etcd-username      CAIRN_ETCD_USERNAME       etcd user (etcd auth enabled)
//	--etcd-password-file CAIRN_ETCD_PASSWORD_FILE  file holding the password
//	                     CAIRN_ETCD_PASSWORD       the password itself (environment only)
//
// The password is never a command-line flag: argv is visible to every user of the host.
package etcdclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-io/cairn/pkg/envflag"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// DialTimeout bounds the client's first connection attempt.
const DialTimeout = 5 * time.Second

// Security is how a client authenticates to etcd and verifies it. The zero value is
// plaintext without authentication (an etcd on loopback).
type Security struct {
	CAFile   string
	CertFile string
	KeyFile  string
	Username string
	Password string
}

// TLS reports whether any TLS setting is present.
func (s Security) TLS() bool { return s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" }

// Validate checks the settings against the endpoints; each problem names its flag.
func (s Security) Validate(endpoints []string) error {
	var errs []error
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, errors.New("--etcd-cert (CAIRN_ETCD_CERT) and --etcd-key (CAIRN_ETCD_KEY) go together"))
	}
	if s.Username != "" && s.Password == "" {
		errs = append(errs, errors.New("--etcd-username (CAIRN_ETCD_USERNAME) needs a password: CAIRN_ETCD_PASSWORD or --etcd-password-file (CAIRN_ETCD_PASSWORD_FILE)"))
	}
	if s.Password != "" && s.Username == "" {
		errs = append(errs, errors.New("an etcd password is set without --etcd-username (CAIRN_ETCD_USERNAME)"))
	}
	if s.TLS() {
		for _, ep := range endpoints {
			if strings.HasPrefix(ep, "http://") {
				errs = append(errs, fmt.Errorf("--etcd-endpoints (CAIRN_ETCD_ENDPOINTS) %q is http:// but etcd TLS is configured: use https://", ep))
			}
		}
	}
	return errors.Join(errs...)
}

// usesHTTPS reports whether an endpoint asks for TLS.
func usesHTTPS(endpoints []string) bool {
	for _, ep := range endpoints {
		if u, err := url.Parse(ep); err == nil && (u.Scheme == "https" || u.Scheme == "unixs") {
			return true
		}
	}
	return false
}

// Config returns the clientv3 configuration for endpoints and s.
func Config(endpoints []string, s Security) (clientv3.Config, error) {
	if err := s.Validate(endpoints); err != nil {
		return clientv3.Config{}, err
	}
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: DialTimeout, Username: s.Username, Password: s.Password,
		// etcd's own zap logging would duplicate what Cairn logs about its failures.
		Logger: zap.NewNop()}
	switch {
	case s.CAFile != "":
		tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile})
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = tc
	case s.CertFile != "":
		// A client certificate, the server verified by the system roots.
		pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	case usesHTTPS(endpoints):
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return cfg, nil
}

// New returns a client for endpoints with s.
func New(endpoints []string, s Security) (*clientv3.Client, error) {
	cfg, err := Config(endpoints, s)
	if err != nil {
		return nil, err
	}
	return clientv3.New(cfg)
}

// Flags holds what AddFlags registered until Finish resolves the password.
type Flags struct {
	s            *Security
	passwordFile string
}

// AddFlags registers the etcd security flags on fs, writing into s.
func AddFlags(fs *envflag.Set, s *Security) *Flags {
	f := &Flags{s: s}
	fs.String(&s.CAFile, "etcd-ca", "CAIRN_ETCD_CA", "", "CA file that signed etcd's server certificate (with https:// endpoints)")
	fs.String(&s.CertFile, "etcd-cert", "CAIRN_ETCD_CERT", "", "client certificate file for etcd (etcd --client-cert-auth)")
	fs.String(&s.KeyFile, "etcd-key", "CAIRN_ETCD_KEY", "", "key file of --etcd-cert")
	fs.String(&s.Username, "etcd-username", "CAIRN_ETCD_USERNAME", "", "etcd user name (etcd auth); the password comes from CAIRN_ETCD_PASSWORD or --etcd-password-file")
	fs.String(&f.passwordFile, "etcd-password-file", "CAIRN_ETCD_PASSWORD_FILE", "", "file holding the etcd password (trailing newline ignored)")
	return f
}

// Finish reads the password after the flags were parsed: CAIRN_ETCD_PASSWORD from
// lookupEnv (nil: os.LookupEnv), else the password file. Both set is an error.
func (f *Flags) Finish(lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	pw, fromEnv := lookupEnv("CAIRN_ETCD_PASSWORD")
	if fromEnv && f.passwordFile != "" {
		return errors.New("CAIRN_ETCD_PASSWORD and --etcd-password-file (CAIRN_ETCD_PASSWORD_FILE) are both set; set one")
	}
	if f.passwordFile != "" {
		data, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return fmt.Errorf("--etcd-password-file (CAIRN_ETCD_PASSWORD_FILE): %w", err)
		}
		pw = strings.TrimRight(string(data), "\r\n")
	}
	f.s.Password = pw
	return nil
}
