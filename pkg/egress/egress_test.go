package egress_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/egress"
)

// No test here may send a packet off the machine. Every dial goes through probe.dialer, whose
// own Control (run after the policy's) refuses any address that is not loopback, and name
// lookups go to an in-process resolver (never the system's DNS server). So even a policy that
// wrongly allowed 169.254.169.254 would get no further than a counted, refused socket.

// probe counts the connections the policy let through to the final Control.
type probe struct {
	passed atomic.Int32
	addrs  chan string
}

var errNotLoopback = errors.New("test dialer: refusing a non-loopback address")

func newProbe() *probe { return &probe{addrs: make(chan string, 64)} }

// dialer is the policy's dialer over a base that resolves names with res and refuses every
// non-loopback address itself.
func (pr *probe) dialer(p *egress.Policy, res *net.Resolver) *net.Dialer {
	return p.Dialer(&net.Dialer{
		Timeout:  5 * time.Second,
		Resolver: res,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			pr.passed.Add(1)
			select {
			case pr.addrs <- address:
			default:
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return errNotLoopback
			}
			return nil
		},
	})
}

// client is what an HTTP task uses: the policy's dialer, no proxy, the literal check before
// the first request and on every redirect.
func (pr *probe) client(p *egress.Policy, res *net.Resolver) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       pr.dialer(p, res).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 5 {
				return errors.New("too many redirects")
			}
			return p.CheckURL(req.URL)
		},
	}
}

func (pr *probe) get(p *egress.Policy, res *net.Resolver, rawURL string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if err := p.CheckURL(u); err != nil {
		return nil, err
	}
	return pr.client(p, res).Get(rawURL)
}

// offlineResolver reads /etc/hosts like the system resolver but fails instead of sending a
// DNS query.
func offlineResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("test resolver: no DNS")
	}}
}

func mustPolicy(t *testing.T, allow string) *egress.Policy {
	t.Helper()
	ps, err := egress.ParseAllowList(allow)
	if err != nil {
		t.Fatal(err)
	}
	p, err := egress.NewPolicy(ps)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// server starts an HTTP server on addr (a loopback host:0) and counts its connections.
func server(t *testing.T, addr string, h http.Handler) (*httptest.Server, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	cl := &countingListener{Listener: l}
	srv := &httptest.Server{Listener: cl, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func wantDenied(t *testing.T, err error, rule string) *egress.DeniedError {
	t.Helper()
	var d *egress.DeniedError
	if !errors.As(err, &d) || !errors.Is(err, egress.ErrDenied) {
		t.Fatalf("error %v (%T), want a *DeniedError", err, err)
	}
	if rule != "" && d.Rule != rule {
		t.Errorf("rule %q, want %q (%v)", d.Rule, rule, err)
	}
	if !strings.Contains(err.Error(), "allow it with --egress-allow") {
		t.Errorf("error %q does not say how to allow it", err)
	}
	return d
}

// TestBlockedBeforeDial: every spelling of a blocked address is refused by the default policy
// and no connection to it is attempted. Each host goes through the full path of an HTTP task
// (literal check, then the client); the IP literals Go's dialer parses and localhost also go
// straight to the dialer, skipping the literal check, to show the dial-time check alone
// refuses them.
func TestBlockedBeforeDial(t *testing.T) {
	for _, tc := range []struct {
		host string // as in the URL (brackets included for IPv6)
		rule string
	}{
		{"127.0.0.1", "loopback"},
		{"127.0.0.2", "loopback"},
		{"127.255.255.254", "loopback"},
		{"2130706433", "loopback"},        // decimal
		{"0x7f000001", "loopback"},        // hex
		{"0X7F000001", "loopback"},        // hex, upper case
		{"0177.0.0.1", "loopback"},        // octal first part
		{"0x7f.0.0.1", "loopback"},        // hex first part
		{"127.1", "loopback"},             // two parts
		{"127.0.1", "loopback"},           // three parts
		{"017700000001", "loopback"},      // octal, one part
		{"127.0.0.1.", "loopback"},        // trailing dot
		{"localhost", "loopback"},         // name
		{"LocalHost.", "loopback"},        // name, case and trailing dot
		{"api.localhost", "loopback"},     // RFC 6761
		{"[::1]", "loopback"},             // IPv6 loopback
		{"[0:0:0:0:0:0:0:1]", "loopback"}, // uncompressed
		{"[::ffff:127.0.0.1]", "loopback"},
		{"[::ffff:7f00:1]", "loopback"},
		{"[0:0:0:0:0:ffff:7f00:1]", "loopback"},
		{"[::127.0.0.1]", "loopback"},     // IPv4-compatible
		{"[64:ff9b::7f00:1]", "loopback"}, // NAT64
		{"[64:ff9b::169.254.169.254]", "link-local"},
		{"[2002:a9fe:a9fe::1]", "link-local"}, // 6to4 of 169.254.169.254
		{"169.254.169.254", "link-local"},
		{"0xa9fea9fe", "link-local"},
		{"[::ffff:169.254.169.254]", "link-local"},
		{"[fe80::1]", "link-local"},
		{"[fe80::1%25lo]", "link-local"}, // zone
		{"10.0.0.1", "private"},
		{"012.1", "private"}, // 10.0.0.1
		{"172.16.5.4", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"[::ffff:192.168.1.1]", "private"},
		{"100.64.0.1", "shared address space (CGNAT)"},
		{"[fc00::1]", "unique-local"},
		{"[fd12:3456::1]", "unique-local"},
		{"0.0.0.0", "unspecified"},
		{"0", "unspecified"},
		{"[::]", "unspecified"},
		{"0.1.2.3", "this-network (connecting to it reaches this host)"},
		{"224.0.0.1", "multicast"},
		{"[ff02::1]", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"0xffffffff", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.2.10", "documentation (TEST-NET-1)"},
		{"[2001:db8::1]", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"[fec0::1]", "site-local (deprecated)"},
		{"[2001::1]", "Teredo"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			pr := newProbe()
			p := mustPolicy(t, "")
			// The URL path is that of an HTTP task.
			_, err := pr.get(p, offlineResolver(), "http://"+tc.host+":80/latest/meta-data/")
			wantDenied(t, err, tc.rule)
			if n := pr.passed.Load(); n != 0 {
				t.Fatalf("%d connection(s) got past the policy", n)
			}
			// The dial-time check on its own, for what the dialer itself parses or resolves.
			h := strings.Trim(tc.host, "[]")
			if unesc, err := url.PathUnescape(h); err == nil {
				h = unesc
			}
			if net.ParseIP(strings.SplitN(h, "%", 2)[0]) == nil && !strings.EqualFold(h, "localhost") {
				return
			}
			_, err = pr.dialer(p, offlineResolver()).DialContext(t.Context(), "tcp", net.JoinHostPort(h, "80"))
			wantDenied(t, err, tc.rule)
			if n := pr.passed.Load(); n != 0 {
				t.Fatalf("dial: %d connection(s) got past the policy", n)
			}
		})
	}
}

func TestCheckAllowsPublic(t *testing.T) {
	p := mustPolicy(t, "")
	for _, s := range []string{"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1", "11.0.0.1",
		"2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"} {
		if err := p.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, h := range []string{"example.com", "api.internal", "1.2.3.4.nip.io", "0x7g.0.0.1", "08.0.0.1"} {
		if err := p.CheckHost(h); err != nil {
			t.Errorf("CheckHost(%s): %v (names are for the dial-time check)", h, err)
		}
	}
}

func TestDeniedMessage(t *testing.T) {
	p := mustPolicy(t, "")
	for host, want := range map[string]string{
		"169.254.169.254":  "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow)",
		"0x7f000001":       "egress denied: 0x7f000001 (127.0.0.1) is loopback (127.0.0.0/8; allow it with --egress-allow)",
		"::ffff:10.1.2.3":  "egress denied: ::ffff:10.1.2.3 (10.1.2.3) is private (10.0.0.0/8; allow it with --egress-allow)",
		"64:ff9b::7f00:1":  "egress denied: 64:ff9b::7f00:1 (NAT64 form of 127.0.0.1) is loopback (127.0.0.0/8; allow it with --egress-allow)",
		"localhost":        "egress denied: localhost (127.0.0.1) is loopback (127.0.0.0/8; allow it with --egress-allow)",
		"fd00::1":          "egress denied: fd00::1 is unique-local (fc00::/7; allow it with --egress-allow)",
		"0:0:0:0:0:0:0:1":  "egress denied: 0:0:0:0:0:0:0:1 (::1) is loopback (::1/128; allow it with --egress-allow)",
		"::8.8.8.8":        "egress denied: ::8.8.8.8 (::808:808) is reserved (::/8; allow it with --egress-allow)",
		"100.100.100.200":  "egress denied: 100.100.100.200 is shared address space (CGNAT) (100.64.0.0/10; allow it with --egress-allow)",
		"fe80::a:b%eth0":   "egress denied: fe80::a:b%eth0 (fe80::a:b) is link-local (fe80::/10; allow it with --egress-allow)",
		"255.255.255.255.": "egress denied: 255.255.255.255. (255.255.255.255) is broadcast (255.255.255.255/32; allow it with --egress-allow)",
	} {
		err := p.CheckHost(host)
		if err == nil || err.Error() != want {
			t.Errorf("CheckHost(%s) = %v\nwant %s", host, err, want)
		}
	}
}

// TestAllowListExact: each allow-list opens what it lists and nothing next to it.
func TestAllowListExact(t *testing.T) {
	for _, tc := range []struct {
		allow         string
		open, blocked []string
	}{
		{"127.0.0.1/32", []string{"127.0.0.1", "::ffff:127.0.0.1", "8.8.8.8"},
			[]string{"127.0.0.2", "127.0.0.0", "::1", "64:ff9b::7f00:1", "::127.0.0.1", "169.254.169.254", "10.0.0.1"}},
		{"127.0.0.0/8,::1/128", []string{"127.0.0.1", "127.255.255.255", "::1"},
			[]string{"::2", "fe80::1", "0.0.0.0", "::", "169.254.169.254"}},
		{"10.20.0.0/16", []string{"10.20.0.1", "10.20.255.255"},
			[]string{"10.21.0.1", "10.19.255.255", "10.0.0.1", "192.168.0.1"}},
		{"169.254.169.254/32", []string{"169.254.169.254"}, []string{"169.254.169.253", "169.254.0.1", "fe80::1"}},
		{"fd00:1::/64", []string{"fd00:1::1", "fd00:1::ffff:ffff:ffff:ffff"}, []string{"fd00:2::1", "fd00::1", "fc00::1"}},
		{"::ffff:192.168.1.0/120", []string{"192.168.1.7", "::ffff:192.168.1.255"}, []string{"192.168.2.1", "192.168.0.255", "::ffff:192.168.2.1"}},
		{"64:ff9b::7f00:1/128", []string{"64:ff9b::7f00:1"}, []string{"127.0.0.1", "64:ff9b::7f00:2"}},
	} {
		p := mustPolicy(t, tc.allow)
		for _, s := range tc.open {
			if err := p.Check(netip.MustParseAddr(s)); err != nil {
				t.Errorf("allow %s: %s refused: %v", tc.allow, s, err)
			}
		}
		for _, s := range tc.blocked {
			if err := p.Check(netip.MustParseAddr(s)); !errors.Is(err, egress.ErrDenied) {
				t.Errorf("allow %s: %s not refused (%v)", tc.allow, s, err)
			}
		}
	}

	// Over real loopback sockets: 127.0.0.1 allowed, 127.0.0.2 and ::1 are not.
	srv1, l1 := server(t, "127.0.0.1:0", http.HandlerFunc(ok))
	_, l2 := server(t, "127.0.0.2:0", http.HandlerFunc(ok))
	_, l6 := server(t, "[::1]:0", http.HandlerFunc(ok))
	p := mustPolicy(t, "127.0.0.1/32")
	pr := newProbe()
	resp, err := pr.get(p, offlineResolver(), srv1.URL)
	if err != nil {
		t.Fatalf("allowed 127.0.0.1: %v", err)
	}
	resp.Body.Close()
	if l1.n.Load() != 1 || pr.passed.Load() != 1 {
		t.Errorf("allowed server saw %d connections, %d passed the policy; want 1, 1", l1.n.Load(), pr.passed.Load())
	}
	for _, l := range []*countingListener{l2, l6} {
		addr := l.Addr().String()
		_, err := pr.get(p, offlineResolver(), "http://"+addr+"/")
		wantDenied(t, err, "loopback")
		// Straight to the dialer: the dial-time check alone.
		_, err = pr.dialer(p, offlineResolver()).DialContext(t.Context(), "tcp", addr)
		wantDenied(t, err, "loopback")
		if n := l.n.Load(); n != 0 {
			t.Errorf("%s (not allowed) saw %d connections", addr, n)
		}
	}
	if pr.passed.Load() != 1 {
		t.Errorf("%d connections passed the policy, want 1", pr.passed.Load())
	}
	// localhost resolves (from /etc/hosts or to ::1) and each address is checked; with only
	// ::1 missing from the allow-list it is the IPv4 one that connects, if any.
	if _, err := offlineResolver().LookupNetIP(t.Context(), "ip", "localhost"); err == nil {
		_, port, _ := net.SplitHostPort(srv1.Listener.Addr().String())
		resp, err := pr.get(p, offlineResolver(), "http://localhost:"+port+"/")
		if err == nil {
			resp.Body.Close()
		} else if !errors.Is(err, egress.ErrDenied) {
			t.Errorf("localhost with 127.0.0.1 allowed: %v", err)
		}
	}
}

// fakeDNS is a resolver whose answers come from answer (name → IPv4 addresses, asked anew for
// every query), served in-process over net.Pipe: no query leaves the process.
func fakeDNS(t *testing.T, answer func(name string) []netip.Addr) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, srv := net.Pipe()
		go serveDNS(srv, answer)
		return client, nil
	}}
}

// serveDNS answers DNS-over-stream queries (2-byte length prefix: a net.Pipe is not a
// PacketConn, so Go's resolver uses TCP framing) until the connection closes.
func serveDNS(c net.Conn, answer func(string) []netip.Addr) {
	defer c.Close()
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		// Question: labels up to a zero byte, then type and class.
		i, labels := 12, []string{}
		for i < len(q) && q[i] != 0 {
			n := int(q[i])
			if i+1+n > len(q) {
				return
			}
			labels = append(labels, string(q[i+1:i+1+n]))
			i += 1 + n
		}
		if i+5 > len(q) {
			return
		}
		qEnd := i + 5
		qtype := int(q[i+1])<<8 | int(q[i+2])
		name := strings.ToLower(strings.Join(labels, "."))
		var addrs []netip.Addr
		if qtype == 1 { // A
			addrs = answer(name)
		}
		resp := append([]byte{}, q[:2]...) // id
		resp = append(resp, 0x81, 0x80)    // response, recursion desired and available
		resp = append(resp, 0, 1, 0, byte(len(addrs)), 0, 0, 0, 0)
		resp = append(resp, q[12:qEnd]...) // the question
		for _, a := range addrs {
			b := a.As4()
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, b[0], b[1], b[2], b[3])
		}
		if _, err := c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)); err != nil {
			return
		}
	}
}

// TestDialTimeResolvedName: a name the literal check cannot judge is refused at dial time on
// the address it resolves to; a name resolving to an allowed address connects.
func TestDialTimeResolvedName(t *testing.T) {
	srv, l1 := server(t, "127.0.0.1:0", http.HandlerFunc(ok))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	_, l2 := server(t, "127.0.0.2:"+port, http.HandlerFunc(ok))
	res := fakeDNS(t, func(name string) []netip.Addr {
		switch name {
		case "allowed.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		case "loop.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.2")}
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		case "mixed.test": // every address is checked: the blocked one is skipped
			return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	p := mustPolicy(t, "127.0.0.1/32")
	pr := newProbe()
	for _, name := range []string{"loop.test", "metadata.test"} {
		_, err := pr.get(p, res, "http://"+name+":"+port+"/")
		wantDenied(t, err, "")
	}
	if pr.passed.Load() != 0 || l2.n.Load() != 0 {
		t.Fatalf("blocked names: %d connections passed the policy, 127.0.0.2 saw %d", pr.passed.Load(), l2.n.Load())
	}
	for _, name := range []string{"allowed.test", "mixed.test"} {
		resp, err := pr.get(p, res, "http://"+name+":"+port+"/")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
	}
	if pr.passed.Load() != 2 || l1.n.Load() != 2 {
		t.Errorf("allowed names: %d passed the policy, 127.0.0.1 saw %d; want 2, 2", pr.passed.Load(), l1.n.Load())
	}
}

// TestRedirectToRebindingName: DNS rebinding and redirects. A name that resolved to the
// allowed server for the first request resolves to a blocked address for the next one; and an
// allowed server redirecting to a blocked literal or to that name is refused at the redirect.
// Only loopback is ever connected to.
func TestRedirectToRebindingName(t *testing.T) {
	var calls atomic.Int32
	mux := http.NewServeMux()
	srv, l1 := server(t, "127.0.0.1:0", mux)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	_, l2 := server(t, "127.0.0.2:"+port, http.HandlerFunc(ok))
	mux.HandleFunc("/", ok)
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	mux.HandleFunc("/to-loopback-2", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/to-name", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://rebind.test:"+port+"/", http.StatusFound)
	})
	res := fakeDNS(t, func(name string) []netip.Addr {
		if name != "rebind.test" {
			return nil
		}
		if calls.Add(1) == 1 { // first answer: the allowed server; then a blocked one
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	})
	p := mustPolicy(t, "127.0.0.1/32")
	pr := newProbe()

	resp, err := pr.get(p, res, "http://rebind.test:"+port+"/")
	if err != nil {
		t.Fatalf("first lookup (127.0.0.1): %v", err)
	}
	resp.Body.Close()
	_, err = pr.get(p, res, "http://rebind.test:"+port+"/")
	wantDenied(t, err, "loopback")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("rebinding: refused by %v, want the dial-time check", err)
	}

	for _, path := range []string{"/to-metadata", "/to-loopback-2"} {
		_, err := pr.get(p, res, srv.URL+path)
		wantDenied(t, err, "")
		if errors.As(err, &op) {
			t.Errorf("%s: refused at dial (%v), want the redirect's literal check", path, err)
		}
	}
	_, err = pr.get(p, res, srv.URL+"/to-name") // the redirect's name resolves to 127.0.0.2
	wantDenied(t, err, "loopback")
	if !errors.As(err, &op) {
		t.Errorf("redirect to a name: refused by %v, want the dial-time check", err)
	}
	// Connections: rebind.test once (allowed), then the server itself for each redirect.
	if got := pr.passed.Load(); got != 4 || l1.n.Load() != 4 {
		t.Errorf("%d connections passed the policy and 127.0.0.1 saw %d, want 4 and 4", got, l1.n.Load())
	}
	if l2.n.Load() != 0 {
		t.Errorf("blocked 127.0.0.2 saw %d connections", l2.n.Load())
	}
	close(pr.addrs)
	for a := range pr.addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("dialed %s", a)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	got, err := egress.ParseAllowList(" 127.0.0.0/8, ::1/128,,10.20.0.0/16 ")
	if err != nil {
		t.Fatal(err)
	}
	if s := egress.FormatAllowList(got); s != "127.0.0.0/8,::1/128,10.20.0.0/16" {
		t.Errorf("parsed %s", s)
	}
	if got, err := egress.ParseAllowList(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"127.0.0.1":       `"127.0.0.1" is an address, not a CIDR (write 127.0.0.1/32)`,
		"::1":             `"::1" is an address, not a CIDR (write ::1/128)`,
		"10.1.2.3/8":      `"10.1.2.3/8": 10.1.2.3/8 has host bits set (did you mean 10.0.0.0/8 or 10.1.2.3/32?)`,
		"10.0.0.0/8,nope": `"nope" is not a CIDR such as 10.0.0.0/8 or fd00::/8`,
		"10.0.0.0/33":     `"10.0.0.0/33" is not a CIDR such as 10.0.0.0/8 or fd00::/8`,
		"localhost/8":     `"localhost/8" is not a CIDR such as 10.0.0.0/8 or fd00::/8`,
	} {
		if _, err := egress.ParseAllowList(in); err == nil || err.Error() != want {
			t.Errorf("ParseAllowList(%q) = %v\nwant %s", in, err, want)
		}
	}
	p, err := egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")})
	if err != nil || egress.FormatAllowList(p.Allowed()) != "10.0.0.0/8" {
		t.Errorf("mapped prefix: %v, %v", p.Allowed(), err)
	}
	if _, err := egress.NewPolicy([]netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}); err == nil {
		t.Error("NewPolicy took a prefix with host bits set")
	}
}

func TestControlFailsClosed(t *testing.T) {
	var p *egress.Policy // nil: the default policy
	for _, addr := range []string{"example.com:80", "/tmp/sock", "", "127.0.0.1"} {
		if err := p.Control(t.Context(), "tcp", addr, nil); !errors.Is(err, egress.ErrDenied) {
			t.Errorf("Control(%q) = %v, want a refusal", addr, err)
		}
	}
	if err := p.Control(t.Context(), "tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	if err := p.CheckHost(""); !errors.Is(err, egress.ErrDenied) {
		t.Errorf("empty host: %v", err)
	}
}

// TestDialerChainsBaseControl: the base dialer's own Control still runs, after the policy's.
func TestDialerChainsBaseControl(t *testing.T) {
	var legacy atomic.Int32
	base := &net.Dialer{Control: func(string, string, syscall.RawConn) error { legacy.Add(1); return nil }}
	srv, _ := server(t, "127.0.0.1:0", http.HandlerFunc(ok))
	d := mustPolicy(t, "127.0.0.1/32").Dialer(base)
	c, err := d.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := d.DialContext(t.Context(), "tcp", "[::1]:9"); !errors.Is(err, egress.ErrDenied) {
		t.Errorf("::1: %v", err)
	}
	if legacy.Load() != 1 {
		t.Errorf("base Control ran %d times, want 1 (after the policy allowed)", legacy.Load())
	}
	if base.ControlContext != nil || base.Control == nil {
		t.Error("Dialer modified its base")
	}
}
