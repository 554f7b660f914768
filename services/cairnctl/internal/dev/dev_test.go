package dev_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/cairnctl/internal/dev"
)

// stateDir returns a directory the postgres user can enter (t.TempDir is mode 0700).
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-dev-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "state")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevRunsAnExample does what the README's quickstart does: start dev mode, run the ETL
// example to success through the API, check /readyz, stop, and find PostgreSQL stopped.
func TestDevRunsAnExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, etcd and every service: not a short test")
	}
	dir := stateDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan dev.Addrs, 1)
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- dev.Run(ctx, dev.Options{Dir: dir, Examples: "../../../../examples", GRPCAddr: "127.0.0.1:0",
			HTTPAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0", Concurrency: 2, Out: out, Ready: func(a dev.Addrs) { ready <- a }})
	}()
	var addrs dev.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped before it was ready: %v\n%s", err, out)
	case <-time.After(2 * time.Minute):
		t.Fatalf("dev not ready\n%s", out)
	}
	if len(addrs.Workflows) != 3 {
		t.Fatalf("applied workflows %v, want the 3 examples", addrs.Workflows)
	}
	// The public API is TLS with the dev CA; plain HTTP and clients without the CA get nothing.
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: addrs.CAFile})
	if err != nil {
		t.Fatalf("the dev CA %q: %v", addrs.CAFile, err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Get("https://" + addrs.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("https://" + addrs.HTTP + "/readyz"); err == nil {
		t.Error("a client without the dev CA accepted the gateway's certificate")
	}
	checkDevTLSFiles(t, dir)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d: %s", resp.StatusCode, body)
	}

	// Authentication is on: without the token nothing answers; with it everything does.
	anon, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := cairnv1.NewRunServiceClient(anon).ListRuns(ctx, &cairnv1.ListRunsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListRuns without a token on dev: %v, want UNAUTHENTICATED", err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, "dev-token"))
	if err != nil || strings.TrimSpace(string(saved)) != addrs.Token || apitoken.ParseSecret(addrs.Token) != nil {
		t.Fatalf("dev-token file %q (%v), want the token %q", saved, err, addrs.Token)
	}
	if fi, err := os.Stat(filepath.Join(dir, "dev-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev-token mode: %v %v, want 0600", fi.Mode(), err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "cairnctl.json"))
	if err != nil || !strings.Contains(string(cfg), addrs.Token) || !strings.Contains(string(cfg), addrs.GRPC) ||
		!strings.Contains(string(cfg), `"ca_file": "`+addrs.CAFile+`"`) {
		t.Fatalf("cairnctl.json = %s (%v), want the address, the CA file and the token", cfg, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cairnctl.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cairnctl.json mode: %v %v, want 0600", fi.Mode(), err)
	}
	if !strings.Contains(out.String(), "Admin token (dev only): "+addrs.Token) {
		t.Errorf("the banner does not print the dev token:\n%s", out)
	}
	conn, err := grpc.NewClient(addrs.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: addrs.Token}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The scheduler has a dev keyring (0600, under the state directory): secrets can be set.
	if fi, err := os.Stat(filepath.Join(dir, "secrets-keyring")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets-keyring: %v %v, want a file of mode 0600", fi, err)
	}
	if _, err := cairnv1.NewSecretServiceClient(conn).SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "dev-check", Value: "dev-value-1234"}); err != nil {
		t.Fatalf("set a secret on dev: %v", err)
	}
	runs := cairnv1.NewRunServiceClient(conn)
	// Shell tasks may run as another user (nobody, when the test runs as root): give them a
	// directory anyone may write.
	out2 := filepath.Join(filepath.Dir(dir), "out")
	if err := os.Mkdir(out2, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out2, 0o777); err != nil {
		t.Fatal(err)
	}
	started, err := runs.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "orders-etl", Params: map[string]string{"out_dir": out2}})
	if err != nil {
		t.Fatalf("start run: %v", err)
	}
	id := started.GetRun().GetRunId()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := runs.GetRun(ctx, &cairnv1.GetRunRequest{RunId: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.GetRun().GetState(); s == cairnv1.RunState_RUN_STATE_SUCCEEDED {
			break
		} else if s == cairnv1.RunState_RUN_STATE_FAILED || s == cairnv1.RunState_RUN_STATE_CANCELLED || time.Now().After(deadline) {
			t.Fatalf("run %s is %s: %v", id, s, got.GetRun().GetTasks())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(out2, "cairn-etl", "2026-01-01", "warehouse", "orders_summary_2026-01-01.csv")); err != nil {
		t.Fatalf("the ETL's output is missing: %v", err)
	}

	// Dev mode's workers may call loopback: the healthcheck example checks the gateway's own
	// /healthz and posts to a hook on this machine.
	var hooks atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hooks.Add(1) }))
	defer hook.Close()
	healthcheck := func(healthURL string) *cairnv1.Run {
		t.Helper()
		started, err := runs.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "api-healthcheck",
			Params: map[string]string{"health_url": healthURL, "hook_url": hook.URL + "/hooks/cairn"}})
		if err != nil {
			t.Fatalf("start api-healthcheck: %v", err)
		}
		return waitTerminal(t, ctx, runs, started.GetRun().GetRunId())
	}
	if r := healthcheck("http://" + addrs.Ops + "/healthz"); r.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED || hooks.Load() != 1 {
		t.Fatalf("api-healthcheck on loopback: %s, %d hook calls: %v", r.GetState(), hooks.Load(), r.GetTasks())
	}
	// Only loopback: the metadata endpoint is refused (before any connection) and not retried
	// although the task has 3 retries; notify-down reports it.
	r := healthcheck("http://169.254.169.254/latest/meta-data/")
	if r.GetState() != cairnv1.RunState_RUN_STATE_FAILED || hooks.Load() != 2 {
		t.Fatalf("api-healthcheck on 169.254.169.254: %s, %d hook calls: %v", r.GetState(), hooks.Load(), r.GetTasks())
	}
	for _, tr := range r.GetTasks() {
		if tr.GetTaskId() != "check" {
			continue
		}
		if tr.GetState() != cairnv1.TaskState_TASK_STATE_FAILED || tr.GetAttempt() != 1 ||
			!strings.HasPrefix(tr.GetLastError(), "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow)") {
			t.Errorf("check: %s after %d attempt(s): %q", tr.GetState(), tr.GetAttempt(), tr.GetLastError())
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "pg", "data", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PostgreSQL still running after dev stopped (postmaster.pid: %v)", err)
	}
	if os.Geteuid() == 0 && !strings.Contains(out.String(), "shell tasks run as user nobody (--task-user)") {
		t.Errorf("run as root, the banner does not say tasks run as nobody:\n%s", out)
	}
	for _, want := range []string{"Cairn is running", "Ctrl-C stops everything", "stopping...", "REST API on https://",
		"TLS CA: " + filepath.Join(dir, "tls", "ca.pem"), "--cacert " + filepath.Join(dir, "tls", "ca.pem"),
		"HTTP tasks may call loopback (dev mode: --egress-allow 127.0.0.0/8,::1/128)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// checkDevTLSFiles checks the layout and modes of DIR/tls.
func checkDevTLSFiles(t *testing.T, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{"tls": 0o700, "tls/ca.pem": 0o644, "tls/ca-key.pem": 0o600,
		"tls/scheduler.pem": 0o644, "tls/scheduler-key.pem": 0o600, "tls/gateway.pem": 0o644, "tls/gateway-key.pem": 0o600,
		"tls/worker.pem": 0o644, "tls/worker-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
}

// waitTerminal polls a run until it ends (a minute at most).
func waitTerminal(t *testing.T, ctx context.Context, runs cairnv1.RunServiceClient, id string) *cairnv1.Run {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := runs.GetRun(ctx, &cairnv1.GetRunRequest{RunId: id})
		if err != nil {
			t.Fatal(err)
		}
		switch got.GetRun().GetState() {
		case cairnv1.RunState_RUN_STATE_SUCCEEDED, cairnv1.RunState_RUN_STATE_FAILED, cairnv1.RunState_RUN_STATE_CANCELLED:
			return got.GetRun()
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s: %v", id, got.GetRun().GetState(), got.GetRun().GetTasks())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPortInUseIsAClearError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = dev.Run(context.Background(), dev.Options{Dir: stateDir(t), HTTPAddr: l.Addr().String(), GRPCAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0"})
	if !errors.Is(err, dev.ErrSetup) || !strings.Contains(err.Error(), "REST API address "+l.Addr().String()+" is not available") {
		t.Fatalf("err = %v, want a clear port-in-use error", err)
	}
}
