package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// AllowFlag is the worker and `cairnctl run --local` flag that opens ranges; denial messages
// name it.
const AllowFlag = "--egress-allow"

// ErrDenied is wrapped by every refusal (a *DeniedError, or a dial address that cannot be
// checked).
var ErrDenied = errors.New("egress denied")

// DeniedError is a refused destination. Its message names the address, the rule and the flag
// that would open it, e.g.
//
//	egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow)
//	egress denied: 0x7f000001 (127.0.0.1) is loopback (127.0.0.0/8; allow it with --egress-allow)
type DeniedError struct {
	// Host is the destination as written (a name such as localhost, a non-canonical IPv4
	// spelling such as 0x7f000001, an IPv4-mapped IPv6 literal) when that is not Addr's own
	// text; empty otherwise.
	Host string
	// Addr is the address refused, without zone; an IPv4-mapped IPv6 address is unmapped.
	Addr netip.Addr
	// Embedded is the IPv4 address Addr carries (Form says how) when that is what the rule
	// applies to; invalid otherwise.
	Embedded netip.Addr
	Form     string // "NAT64", "6to4" or "IPv4-compatible" with Embedded
	// Rule names the range: "loopback", "link-local", "private", "unique-local", …
	Rule string
	// Range is the blocked range Rule names.
	Range netip.Prefix
}

func (e *DeniedError) Error() string {
	subject := e.Addr.String()
	switch {
	case e.Embedded.IsValid():
		subject += " (" + e.Form + " form of " + e.Embedded.String() + ")"
	case e.Host != "" && e.Host != subject:
		subject = e.Host + " (" + subject + ")"
	}
	return fmt.Sprintf("%s: %s is %s (%s; allow it with %s)", ErrDenied, subject, e.Rule, e.Range, AllowFlag)
}

// Unwrap makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Policy decides which addresses HTTP tasks may connect to: everything but the blocked ranges
// (see the package documentation), plus whatever its allow-list lists. A nil *Policy is the
// default policy (an empty allow-list). It is immutable and safe for concurrent use.
type Policy struct {
	allow []netip.Prefix
}

// NewPolicy returns the policy that blocks the default ranges except those within allow.
// Each prefix must be canonical (no host bits set: 10.1.0.0/16, not 10.1.2.3/16); an
// IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) is taken as the IPv4 prefix it maps.
func NewPolicy(allow []netip.Prefix) (*Policy, error) {
	p := &Policy{}
	for _, pfx := range allow {
		n, err := normalizePrefix(pfx)
		if err != nil {
			return nil, err
		}
		p.allow = append(p.allow, n)
	}
	return p, nil
}

func normalizePrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %v", p)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s or %s/%d?)", p, m, p.Addr(), p.Addr().BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// ParseAllowList parses a comma-separated list of CIDRs, the value of --egress-allow /
// CAIRN_EGRESS_ALLOW. Spaces around entries and empty entries are ignored. A bare address or
// a prefix with host bits set is an error that says what to write instead.
func ParseAllowList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			if a, aerr := netip.ParseAddr(f); aerr == nil {
				return nil, fmt.Errorf("%q is an address, not a CIDR (write %s/%d)", f, a.WithZone(""), a.BitLen())
			}
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", f)
		}
		if _, err := normalizePrefix(p); err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// FormatAllowList is the inverse of ParseAllowList ("" for none).
func FormatAllowList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Allowed returns the allow-list (IPv4-mapped prefixes unmapped).
func (p *Policy) Allowed() []netip.Prefix {
	if p == nil {
		return nil
	}
	return append([]netip.Prefix(nil), p.allow...)
}

func (p *Policy) allows(a netip.Addr) bool {
	if p == nil {
		return false
	}
	for _, pfx := range p.allow {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Check decides on one address: nil when a connection to it is allowed, a *DeniedError
// otherwise. A zone is ignored; an IPv4-mapped address is checked as the IPv4 address.
func (p *Policy) Check(addr netip.Addr) error {
	return p.check(addr, "")
}

func (p *Policy) check(addr netip.Addr, host string) error {
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrDenied)
	}
	a := addr.WithZone("").Unmap()
	if p.allows(a) {
		return nil
	}
	if a.Is6() && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback() {
		if v4, form, ok := embeddedIPv4(a); ok {
			if br, blocked := classify(v4); blocked {
				return &DeniedError{Host: host, Addr: a, Embedded: v4, Form: form, Rule: br.rule, Range: br.prefix}
			}
			if form != "IPv4-compatible" { // NAT64 or 6to4 of a public address
				return nil
			}
		}
	}
	if br, blocked := classify(a); blocked {
		return &DeniedError{Host: host, Addr: a, Rule: br.rule, Range: br.prefix}
	}
	return nil
}

// CheckHost refuses, before any lookup or connection, a URL host whose literal form names a
// blocked address: an IP literal in any spelling Go parses (brackets already removed, as by
// url.URL.Hostname), a non-canonical IPv4 spelling that C resolvers and browsers accept
// (2130706433, 0x7f000001, 0177.0.0.1, 127.1), and localhost or *.localhost (RFC 6761),
// taken as loopback. Any other name returns nil: the dial-time check decides on the
// addresses it resolves to.
func (p *Policy) CheckHost(host string) error {
	if host == "" {
		return fmt.Errorf("%w: empty host", ErrDenied)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.check(a, host)
	}
	name := strings.TrimSuffix(host, ".")
	if a, ok := parseLegacyIPv4(name); ok {
		return p.check(a, host)
	}
	lower := strings.ToLower(name)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		// Refused only when neither loopback address is allowed; otherwise the dial-time
		// check decides on what the name resolves to.
		err4 := p.check(netip.MustParseAddr("127.0.0.1"), host)
		if err4 == nil || p.check(netip.IPv6Loopback(), host) == nil {
			return nil
		}
		return err4
	}
	return nil
}

// CheckURL is CheckHost on u's host.
func (p *Policy) CheckURL(u *url.URL) error {
	return p.CheckHost(u.Hostname())
}

// Control is a net.Dialer ControlContext function: it runs after the name is resolved and the
// socket created, before connect, with the numeric address about to be dialed, so it decides
// on the real destination whatever the URL said (every spelling, DNS rebinding, each address of
// a name and each redirect). An address it cannot parse is refused.
func (p *Policy) Control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q", ErrDenied, network, address)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a copy of base whose ControlContext runs the policy's check first and then
// base's own ControlContext (or Control), if any. A nil base is the zero net.Dialer.
func (p *Policy) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{}
	if base != nil {
		*d = *base
	}
	next, legacy := d.ControlContext, d.Control
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := p.Control(ctx, network, address, c); err != nil {
			return err
		}
		switch {
		case next != nil:
			return next(ctx, network, address, c)
		case legacy != nil:
			return legacy(network, address, c)
		}
		return nil
	}
	return d
}

// String describes the policy for logs and banners.
func (p *Policy) String() string {
	if p == nil || len(p.allow) == 0 {
		return "default (no ranges allowed beyond the public internet)"
	}
	return "default, plus " + FormatAllowList(p.allow)
}
