// Package egress decides which network addresses HTTP tasks may connect to, so that a
// workflow cannot use a worker to reach its loopback services, the cloud metadata endpoint
// (169.254.169.254) or the private network around it (server-side request forgery). It imports
// only the standard library.
//
//	p, err := egress.NewPolicy(allow) // allow: from ParseAllowList("10.20.0.0/16,fd00:1::/64")
//	dialer := p.Dialer(&net.Dialer{Timeout: 30 * time.Second})
//	transport := &http.Transport{Proxy: nil, DialContext: dialer.DialContext}
//	// and in the client's CheckRedirect (and before the first request): p.CheckURL(req.URL)
//
// # What is blocked
//
// By default every address outside these ranges is allowed and every address inside them is
// refused (the first matching row names the rule in the error):
//
//	IPv4                                   IPv6
//	0.0.0.0/32       unspecified           ::/128          unspecified
//	0.0.0.0/8        this-network          ::1/128         loopback
//	10.0.0.0/8       private               64:ff9b:1::/48  local-use NAT64
//	100.64.0.0/10    shared (CGNAT)        ::/8            reserved (incl. IPv4-compatible ::/96
//	127.0.0.0/8      loopback                              and IPv4-translated ::ffff:0:0:0/96)
//	169.254.0.0/16   link-local            100::/64        discard-only
//	172.16.0.0/12    private               2001::/32       Teredo
//	192.0.0.0/24     IETF assignments      2001:db8::/32   documentation
//	192.0.2.0/24     documentation         2001::/23       IETF protocol assignments
//	192.88.99.0/24   6to4 relay anycast    3fff::/20       documentation
//	192.168.0.0/16   private               fc00::/7        unique-local
//	198.18.0.0/15    benchmarking          fe80::/10       link-local
//	198.51.100.0/24  documentation         fec0::/10       site-local (deprecated)
//	203.0.113.0/24   documentation         ff00::/8        multicast
//	224.0.0.0/4      multicast
//	255.255.255.255  broadcast
//	240.0.0.0/4      reserved
//
// An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address for every purpose,
// allow-list included. An IPv6 address that carries an IPv4 address by NAT64 (64:ff9b::/96),
// 6to4 (2002::/16) or the deprecated IPv4-compatible form (::/96) is refused when the IPv4
// address it carries is, and the error names both; NAT64 and 6to4 forms of public addresses
// are allowed (an IPv6-only network reaches the IPv4 internet that way), IPv4-compatible
// ones are not (reserved).
//
// # Where it is checked
//
//   - At dial time, on the resolved numeric address (Control, used through Dialer): after
//     DNS, before connect(2), for every address a name resolves to, every connection and every
//     redirect. This is the check that matters: it covers every spelling of an address and
//     DNS rebinding (a name that resolves to a public address when validated and to 127.0.0.1
//     when used), because nothing but the address about to be connected is looked at.
//   - Before any lookup, on the URL's literal host (CheckHost/CheckURL), for the first request
//     and each redirect target: IP literals in every form Go parses, the non-canonical IPv4
//     spellings C resolvers and browsers accept (2130706433, 0x7f000001, 0177.0.0.1, 127.1),
//     and localhost / *.localhost. It makes refusals early and clear, and it keeps such
//     spellings from ever reaching a resolver (Go's would send them to DNS).
//
// # The allow-list
//
// NewPolicy(allow) opens exactly the listed prefixes and nothing else: allowing 127.0.0.1/32
// leaves 127.0.0.2 and ::1 blocked, and allowing 127.0.0.0/8 does not open its NAT64 form.
// ParseAllowList reads the flag syntax (comma-separated CIDRs) and rejects a bare address or a
// prefix with host bits set with a message saying what to write.
//
// # Not covered
//
// Only connections made through a Dialer of a Policy are checked: the caller must not route
// them through a proxy (an HTTP proxy would be the address dialed, and it would connect to the
// target itself). Shell tasks are not restricted at all: a process can open any socket.
//
// # Invariants and their tests
//
//   - Every address spelling in TestBlockedBeforeDial is refused before any connect, whether by
//     the literal check or at dial time; the dialer under test refuses anything but loopback
//     itself, so a bug cannot make a packet leave the machine.
//   - The allow-list opens exactly what it lists: TestAllowListExact.
//   - A name resolving to a blocked address, directly or after a redirect, is refused at dial
//     time and the refused server sees no connection: TestDialTimeResolvedName,
//     TestRedirectToRebindingName.
//   - Allow-list parsing: TestParseAllowList.
package egress
