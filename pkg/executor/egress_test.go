package executor_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-io/cairn/pkg/egress"
	"github.com/cairn-io/cairn/pkg/executor"
)

// These tests connect to loopback only. Addresses that must be refused either go to an
// executor whose transport refuses every request (so the test proves the executor refused
// them before any transport was involved), or are loopback addresses whose servers count
// their connections.

// refusingTransport fails every request it is given and counts them.
type refusingTransport struct{ calls atomic.Int32 }

func (rt *refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	rt.calls.Add(1)
	return nil, errors.New("test transport: this request should have been refused before it was sent")
}

// countedServer is an httptest server on addr ("127.0.0.1:0", "127.0.0.2:0", …) that counts
// the connections it accepts.
func countedServer(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var n atomic.Int32
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func wantEgressDenied(t *testing.T, res *executor.Result, rule string) {
	t.Helper()
	wantFailure(t, res, executor.FailureInternal, executor.ErrEgressDenied)
	var d *egress.DeniedError
	if !errors.As(res.Err, &d) {
		t.Fatalf("Err %v is not an *egress.DeniedError", res.Err)
	}
	if !res.NoRetry {
		t.Errorf("NoRetry is false for %q", res.Error)
	}
	if rule != "" && d.Rule != rule {
		t.Errorf("rule %q, want %q: %s", d.Rule, rule, res.Error)
	}
	if !strings.HasPrefix(res.Error, "egress denied: ") || !strings.Contains(res.Error, " is "+d.Rule+" (") ||
		!strings.Contains(res.Error, "allow it with --egress-allow") {
		t.Errorf("Error %q does not name the rule and the flag", res.Error)
	}
}

// TestHTTPEgressDeniedBeforeDial: with the default policy, an HTTP task to any spelling of a
// blocked address fails at once — internal, not to be retried, the message naming the rule —
// and no request reaches the transport.
func TestHTTPEgressDeniedBeforeDial(t *testing.T) {
	rt := &refusingTransport{}
	d := newExecutor(t, executor.Config{HTTPTransport: rt})
	for _, tc := range []struct{ url, rule string }{
		{"http://127.0.0.1:8080/healthz", "loopback"},
		{"http://127.0.0.53/", "loopback"},
		{"http://2130706433/", "loopback"},
		{"http://0x7f000001/", "loopback"},
		{"http://0177.0.0.1/", "loopback"},
		{"http://127.1/", "loopback"},
		{"http://localhost:8080/", "loopback"},
		{"https://api.localhost/", "loopback"},
		{"http://[::1]:8080/", "loopback"},
		{"http://[0:0:0:0:0:0:0:1]/", "loopback"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"http://[64:ff9b::7f00:1]/", "loopback"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[::ffff:169.254.169.254]/", "link-local"},
		{"http://0xa9fea9fe/", "link-local"},
		{"http://[fe80::1%25eth0]/", "link-local"},
		{"http://10.0.0.1/", "private"},
		{"http://172.16.0.1/", "private"},
		{"https://192.168.0.1:8443/admin", "private"},
		{"http://100.100.100.200/", "shared address space (CGNAT)"},
		{"http://[fd00::1]/", "unique-local"},
		{"http://0.0.0.0:8080/", "unspecified"},
		{"http://[::]/", "unspecified"},
		{"http://224.0.0.251/", "multicast"},
		{"http://[ff02::1]/", "multicast"},
		{"http://255.255.255.255/", "broadcast"},
		{"http://user:secret@127.0.0.1/", "loopback"},
	} {
		res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: tc.url}))
		wantEgressDenied(t, res, tc.rule)
		if res.HTTPStatus != 0 {
			t.Errorf("%s: HTTPStatus %d", tc.url, res.HTTPStatus)
		}
		if strings.Contains(res.Error, "secret") {
			t.Errorf("%s: the error shows the password: %s", tc.url, res.Error)
		}
	}
	if n := rt.calls.Load(); n != 0 {
		t.Fatalf("%d request(s) reached the transport", n)
	}

	res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: "http://169.254.169.254/latest/meta-data/"}))
	want := "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow): GET http://169.254.169.254/latest/meta-data/"
	if res.Error != want {
		t.Errorf("Error\n%s\nwant\n%s", res.Error, want)
	}
}

// TestHTTPEgressDialTime: the default transport checks the resolved address. localhost passes
// the literal check when ::1 is allowed, but what it resolves to here, 127.0.0.1, is refused at
// dial time, and the server there sees no connection.
func TestHTTPEgressDialTime(t *testing.T) {
	addrs, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "localhost")
	if err != nil || len(addrs) != 1 || addrs[0].Unmap() != netip.MustParseAddr("127.0.0.1") {
		t.Skipf("localhost resolves to %v (%v) here; the test needs 127.0.0.1 alone", addrs, err)
	}
	srv, conns := countedServer(t, "127.0.0.1:0", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	d := newExecutor(t, executor.Config{EgressAllow: []netip.Prefix{netip.MustParsePrefix("::1/128")}})
	res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: "http://localhost:" + port + "/"}))
	wantEgressDenied(t, res, "loopback")
	var op *net.OpError
	if !errors.As(res.Err, &op) || op.Op != "dial" {
		t.Errorf("Err %v: want the refusal of the dial", res.Err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the refused server saw %d connection(s)", n)
	}
}

// TestHTTPEgressRedirect: a server the allow-list opens redirects to a blocked target; the
// redirect is refused before it is followed, the result keeps the 3xx status, and the target
// sees no connection. Only 127.0.0.1 is ever connected to.
func TestHTTPEgressRedirect(t *testing.T) {
	blocked, blockedConns := countedServer(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "should not be reached")
	}))
	var hits atomic.Int32
	srv, conns := countedServer(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/", http.StatusFound)
		case "/to-loopback":
			http.Redirect(w, r, blocked.URL+"/", http.StatusTemporaryRedirect)
		case "/hop":
			http.Redirect(w, r, "/to-metadata", http.StatusMovedPermanently)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	d := newExecutor(t, executor.Config{EgressAllow: testServers})

	res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/to-metadata"}))
	wantEgressDenied(t, res, "link-local")
	if res.HTTPStatus != http.StatusFound {
		t.Errorf("HTTPStatus %d, want the refused redirect's 302", res.HTTPStatus)
	}
	want := "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow): GET " +
		srv.URL + "/to-metadata redirected to http://169.254.169.254/latest/meta-data/iam/"
	if res.Error != want {
		t.Errorf("Error\n%s\nwant\n%s", res.Error, want)
	}
	var op *net.OpError
	if errors.As(res.Err, &op) {
		t.Errorf("refused by a dial (%v), want before any dial", res.Err)
	}

	res = execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{Method: "POST", Body: "x", URL: srv.URL + "/to-loopback"}))
	wantEgressDenied(t, res, "loopback")
	if !strings.Contains(res.Error, "127.0.0.2 is loopback") || !strings.Contains(res.Error, "redirected to "+blocked.URL+"/") {
		t.Errorf("Error %q", res.Error)
	}

	res = execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/hop"})) // allowed hop first
	wantEgressDenied(t, res, "link-local")

	if n := blockedConns.Load(); n != 0 {
		t.Errorf("the blocked redirect target saw %d connection(s)", n)
	}
	if hits.Load() != 4 || conns.Load() < 1 {
		t.Errorf("allowed server: %d requests over %d connections, want 4 requests", hits.Load(), conns.Load())
	}
}

// TestHTTPEgressAllowListExact: 127.0.0.1/32 opens 127.0.0.1 and not 127.0.0.2; 127.0.0.0/8
// opens both.
func TestHTTPEgressAllowListExact(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	one, oneConns := countedServer(t, "127.0.0.1:0", handler)
	two, twoConns := countedServer(t, "127.0.0.2:0", handler)

	narrow := newExecutor(t, executor.Config{EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	wantSuccess(t, execute(t, t.Context(), narrow, httpAttempt(executor.HTTPSpec{URL: one.URL})))
	wantEgressDenied(t, execute(t, t.Context(), narrow, httpAttempt(executor.HTTPSpec{URL: two.URL})), "loopback")
	if oneConns.Load() != 1 || twoConns.Load() != 0 {
		t.Fatalf("127.0.0.1/32: connections to .1 %d, to .2 %d; want 1, 0", oneConns.Load(), twoConns.Load())
	}

	wide := newExecutor(t, executor.Config{EgressAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	wantSuccess(t, execute(t, t.Context(), wide, httpAttempt(executor.HTTPSpec{URL: one.URL})))
	wantSuccess(t, execute(t, t.Context(), wide, httpAttempt(executor.HTTPSpec{URL: two.URL})))
	wantEgressDenied(t, execute(t, t.Context(), wide, httpAttempt(executor.HTTPSpec{URL: "http://[::1]:1/"})), "loopback")
	if twoConns.Load() != 1 {
		t.Errorf("127.0.0.0/8: .2 saw %d connections, want 1", twoConns.Load())
	}
}

// TestHTTPOtherFailuresAreRetried: only an egress refusal sets NoRetry.
func TestHTTPOtherFailuresAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, srv := newRecorder(t, 500, "")
	d := newExecutor(t, executor.Config{EgressAllow: testServers})
	for _, u := range []string{"http://" + addr + "/", srv.URL} {
		if res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: u})); res.Succeeded || res.NoRetry {
			t.Errorf("%s: Succeeded %v, NoRetry %v (%s)", u, res.Succeeded, res.NoRetry, res.Error)
		}
	}
	if res := execute(t, t.Context(), d, script("exit 3")); res.NoRetry {
		t.Errorf("shell failure has NoRetry: %s", res.Error)
	}
}
