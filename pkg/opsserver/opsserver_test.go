package opsserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/opsserver"
)

func newServer(t *testing.T, cfg opsserver.Config) *opsserver.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := opsserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	s := newServer(t, opsserver.Config{})
	if code, body := get(t, s.Handler(), "GET", "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q", code, body)
	}
	if code, _ := get(t, s.Handler(), "POST", "/healthz"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz = %d, want 405", code)
	}
}

func TestReadyz(t *testing.T) {
	s := newServer(t, opsserver.Config{CheckTimeout: 200 * time.Millisecond})
	if code, body := get(t, s.Handler(), "GET", "/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz without checks = %d %s", code, body)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddCheck("db", func(context.Context) error { return nil }))
	if code, _ := get(t, s.Handler(), "GET", "/readyz"); code != 200 {
		t.Fatalf("/readyz with a passing check = %d", code)
	}
	must(s.AddCheck("etcd", func(context.Context) error { return errors.New("no etcd endpoint answers") }))
	must(s.AddCheck("leader", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))
	must(s.AddCheck("stuck", func(context.Context) error { time.Sleep(time.Second); return nil })) // ignores ctx
	must(s.AddCheck("buggy", func(context.Context) error { panic("nil map") }))

	code, body := get(t, s.Handler(), "GET", "/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with failing checks = %d, want 503", code)
	}
	var r opsserver.Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("body is not JSON: %q: %v", body, err)
	}
	if r.Status != "not ready" || len(r.Checks) != 5 {
		t.Fatalf("readiness %+v", r)
	}
	want := map[string]string{ // name → substring of the reason ("" = passes)
		"buggy": "panicked", "db": "", "etcd": "no etcd endpoint answers", "leader": "timed out", "stuck": "timed out",
	}
	for i, c := range r.Checks {
		if i > 0 && r.Checks[i-1].Name >= c.Name {
			t.Errorf("checks not ordered by name: %+v", r.Checks)
		}
		reason, ok := want[c.Name]
		switch {
		case !ok:
			t.Errorf("unexpected check %q", c.Name)
		case reason == "" && (!c.OK || c.Error != ""):
			t.Errorf("check %s = %+v, want ok", c.Name, c)
		case reason != "" && (c.OK || !strings.Contains(c.Error, reason)):
			t.Errorf("check %s = %+v, want failed with %q", c.Name, c, reason)
		}
	}
}

func TestAddCheckErrors(t *testing.T) {
	s := newServer(t, opsserver.Config{})
	ok := func(context.Context) error { return nil }
	if err := s.AddCheck("db", ok); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"duplicate": s.AddCheck("db", ok),
		"empty":     s.AddCheck("", ok),
		"bad name":  s.AddCheck("DB Check", ok),
		"nil":       s.AddCheck("x", nil),
	} {
		if !errors.Is(err, opsserver.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestMetricsAndPprofMounting(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "cairn_up 1\n") })
	on := newServer(t, opsserver.Config{Metrics: metrics, Pprof: true})
	if code, body := get(t, on.Handler(), "GET", "/metrics"); code != 200 || body != "cairn_up 1\n" {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	if code, body := get(t, on.Handler(), "GET", "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d", code)
	}
	if code, _ := get(t, on.Handler(), "GET", "/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Fatalf("/debug/pprof/goroutine = %d", code)
	}
	off := newServer(t, opsserver.Config{})
	for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if code, _ := get(t, off.Handler(), "GET", p); code != http.StatusNotFound {
			t.Errorf("%s with it disabled = %d, want 404", p, code)
		}
	}
}

func TestServesOnLoopbackAndStops(t *testing.T) {
	s := newServer(t, opsserver.Config{ShutdownTimeout: time.Second})
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 5 {
		if err := s.Start(context.Background()); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		addr := s.Addr()
		if addr == nil {
			t.Fatal("Addr is nil while running")
		}
		resp, err := client.Get("http://" + addr.String() + "/healthz")
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("start %d: /healthz = %s", i, resp.Status)
		}
		s.Stop()
		s.Stop()
		if s.Addr() != nil {
			t.Fatal("Addr still set after Stop")
		}
		if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("stop %d: %s still accepts connections", i, addr)
		}
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newServer(t, opsserver.Config{Addr: ln.Addr().String()})
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Start on a busy port: %v, want an error naming the address", err)
	}
	if s.Running() {
		t.Fatal("running after a failed Start")
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []opsserver.Config{{}, {Addr: "9090"}, {Addr: ":1", CheckTimeout: -1}} {
		if _, err := opsserver.New(cfg); !errors.Is(err, opsserver.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}
