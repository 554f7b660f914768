package egress

import (
	"net/netip"
	"testing"
)

func TestParseLegacyIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"2130706433":   "127.0.0.1",
		"0x7f000001":   "127.0.0.1",
		"0x7F.1":       "127.0.0.1",
		"0177.0.0.1":   "127.0.0.1",
		"0177.0.0.01":  "127.0.0.1",
		"127.1":        "127.0.0.1",
		"127.0.1":      "127.0.0.1",
		"127.65536":    "127.1.0.0",
		"127.0.0.1":    "127.0.0.1",
		"017700000001": "127.0.0.1",
		"0":            "0.0.0.0",
		"0x":           "0.0.0.0",
		"4294967295":   "255.255.255.255",
		"10.0x10203":   "10.1.2.3",
		"192.168.0x1":  "192.168.0.1",
	} {
		got, ok := parseLegacyIPv4(in)
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("parseLegacyIPv4(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "4294967296", "256.0.0.1", "1.2.3.4.5", "1..2", "08", "0x1g", "+1", "1_000",
		"-1", "127.0.0.256", "127.16777216", "example.com", "1.2.3.x", " 1"} {
		if got, ok := parseLegacyIPv4(in); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no address", in, got)
		}
	}
}
