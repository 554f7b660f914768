// Package loopback decides whether addresses stay on this machine. Cairn's binaries accept
// their insecure (plaintext, unauthenticated) mode only when every address they listen on
// and every peer they talk to is on loopback; this package is that rule, in one place.
//
// "Loopback" means the name localhost (and *.localhost), an IP in 127.0.0.0/8 or ::1, or a
// unix socket path. Any other name is not loopback, even if it resolves to 127.0.0.1 today:
// the rule is decided from the configuration, without DNS. An empty host (":7070") listens on
// every interface and is not loopback either.
package loopback

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Host reports whether host (no port) is on loopback.
func Host(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.HasPrefix(host, "/") {
		return true // a unix socket directory or path
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if i := strings.IndexByte(h, '%'); i >= 0 { // a zone: fe80::1%lo is not loopback anyway
		h = h[:i]
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Addr reports whether host:port is on loopback.
func Addr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return host != "" && Host(host)
}

// URL reports whether a URL (scheme://host:port/…) or a bare host:port is on loopback;
// unix:// and unixs:// URLs are.
func URL(raw string) bool {
	if !strings.Contains(raw, "://") {
		return Addr(raw) || Host(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		return true
	}
	return u.Hostname() != "" && Host(u.Hostname())
}

// Setting is one configured address and the flag (with its variable) it comes from.
type Setting struct {
	Flag  string // e.g. "--grpc-addr (CAIRN_GRPC_ADDR)"
	Value string
	// Kind says how Value is read: Addr (host:port, the default), URL, or Host.
	Kind Kind
}

// Kind is how a Setting's value is read.
type Kind int

// Kinds.
const (
	KindAddr Kind = iota
	KindURL
	KindHost
)

// Check returns an error naming every setting that is not on loopback; empty values are
// skipped (a listener that is off).
func Check(settings []Setting) error {
	var bad []string
	for _, s := range settings {
		if s.Value == "" {
			continue
		}
		var ok bool
		switch s.Kind {
		case KindURL:
			ok = URL(s.Value)
		case KindHost:
			ok = Host(s.Value)
		default:
			ok = Addr(s.Value)
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s=%s", s.Flag, s.Value))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not on loopback: %s", strings.Join(bad, ", "))
	}
	return nil
}
