package egress

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseLegacyIPv4 parses the IPv4 spellings inet_aton(3), getaddrinfo and browsers (WHATWG URL)
// accept but Go's netip does not: one to four parts separated by dots, each decimal, octal
// (leading 0) or hexadecimal (0x); the last part fills the remaining bytes. So 2130706433,
// 0x7f000001, 0177.0.0.1, 127.1 and 0x7f.0.0.1 are all 127.0.0.1. Go's own resolver would send
// such a name to DNS, a C resolver would dial the address: CheckHost treats it as the address.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := parseLegacyPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	for i := 0; i < n-1; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
	}
	last := vals[n-1]
	if last >= 1<<(8*uint(5-n)) {
		return netip.Addr{}, false
	}
	var ip uint64
	for i := 0; i < n-1; i++ {
		ip |= vals[i] << (8 * uint(3-i))
	}
	ip |= last
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

func parseLegacyPart(p string) (uint64, bool) {
	base := 10
	switch {
	case p == "":
		return 0, false
	case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
		base, p = 16, p[2:]
		if p == "" { // "0x" alone is 0 to inet_aton
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	for i := 0; i < len(p); i++ { // ParseUint would accept a sign or underscores
		c := p[i]
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(p, base, 32)
	return v, err == nil
}
