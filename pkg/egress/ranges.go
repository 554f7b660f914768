package egress

import "net/netip"

// blockedRange is one range HTTP tasks may not reach unless the allow-list lists it.
type blockedRange struct {
	prefix netip.Prefix
	rule   string
}

func r(cidr, rule string) blockedRange { return blockedRange{netip.MustParsePrefix(cidr), rule} }

// The ranges below are checked in order and the first match names the rule, so a more specific
// range comes before the one containing it. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
// unmapped before any check: it is the IPv4 address for every purpose. IPv6 forms that carry
// an IPv4 address elsewhere (NAT64, 6to4, IPv4-compatible) are refused when the address they
// carry is; see embeddedIPv4.
var blockedV4 = []blockedRange{
	r("0.0.0.0/32", "unspecified"),
	r("0.0.0.0/8", "this-network (connecting to it reaches this host)"),
	r("10.0.0.0/8", "private"),
	r("100.64.0.0/10", "shared address space (CGNAT)"),
	r("127.0.0.0/8", "loopback"),
	r("169.254.0.0/16", "link-local"),
	r("172.16.0.0/12", "private"),
	r("192.0.0.0/24", "IETF protocol assignments"),
	r("192.0.2.0/24", "documentation (TEST-NET-1)"),
	r("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
	r("192.168.0.0/16", "private"),
	r("198.18.0.0/15", "benchmarking"),
	r("198.51.100.0/24", "documentation (TEST-NET-2)"),
	r("203.0.113.0/24", "documentation (TEST-NET-3)"),
	r("224.0.0.0/4", "multicast"),
	r("255.255.255.255/32", "broadcast"),
	r("240.0.0.0/4", "reserved"),
}

var blockedV6 = []blockedRange{
	r("::/128", "unspecified"),
	r("::1/128", "loopback"),
	// ::ffff:0:0/96 (IPv4-mapped) is unmapped before this table is read; NAT64 and 6to4
	// addresses of public IPv4 addresses are allowed before it (see Policy.check).
	r("64:ff9b:1::/48", "local-use NAT64"),
	r("::/8", "reserved"),
	r("100::/64", "discard-only"),
	r("2001::/32", "Teredo"),
	r("2001:db8::/32", "documentation"),
	r("2001::/23", "IETF protocol assignments"),
	r("3fff::/20", "documentation"),
	r("fc00::/7", "unique-local"),
	r("fe80::/10", "link-local"),
	r("fec0::/10", "site-local (deprecated)"),
	r("ff00::/8", "multicast"),
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	v4Compatible = netip.MustParsePrefix("::/96")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address carries by a well-known translation or
// tunnelling scheme, and the scheme's name: NAT64 (64:ff9b::/96, RFC 6052), 6to4 (2002::/16,
// RFC 3056, the address in bits 16–47) and IPv4-compatible (::/96, deprecated by RFC 4291; ::
// and ::1 are classified before this is asked).
func embeddedIPv4(a netip.Addr) (netip.Addr, string, bool) {
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), "NAT64", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), "6to4", true
	case v4Compatible.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), "IPv4-compatible", true
	}
	return netip.Addr{}, "", false
}

// classify reports the blocked range a holds (a without zone, IPv4-mapped already unmapped).
func classify(a netip.Addr) (blockedRange, bool) {
	table := blockedV6
	if a.Is4() {
		table = blockedV4
	}
	for _, br := range table {
		if br.prefix.Contains(a) {
			return br, true
		}
	}
	return blockedRange{}, false
}
