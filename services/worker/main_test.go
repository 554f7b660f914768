package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/etcdtest"
)

// lockedBuffer collects the child's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBinarySmoke builds cairn-worker, runs it against an embedded etcd with no leader, checks
// /healthz and its registration, then SIGTERMs it: it must exit 0 with its etcd key gone.
func TestBinarySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "cairn-worker")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ops := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"CAIRN_ETCD_ENDPOINTS="+strings.Join(srv.Endpoints(), ","),
		"CAIRN_WORKER_ID=smoke-1",
		"CAIRN_OPS_ADDR="+ops,
		"CAIRN_LEASE_TTL=2s",
		"CAIRN_LOG_FORMAT=json",
		"CAIRN_INSECURE=true", // everything on loopback
	)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	key := "/cairn/workers/smoke-1"
	registered := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key)
		return err == nil && len(resp.Kvs) == 1
	}
	deadline := time.Now().Add(20 * time.Second)
	healthy := false
	for time.Now().Before(deadline) && !(healthy && registered()) {
		select {
		case <-exited:
			t.Fatalf("worker exited early: %v\n%s", waitErr, stderr.String())
		default:
		}
		resp, err := http.Get("http://" + ops + "/healthz")
		if err == nil {
			healthy = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !healthy || !registered() {
		t.Fatalf("worker not healthy (%v) or not registered (%v) in time\n%s", healthy, registered(), stderr.String())
	}
	resp, err := http.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"cairn_worker_free_slots", "cairn_worker_running_attempts", "cairn_worker_results_pending_ack"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), m) {
			t.Fatalf("/metrics (%s) lacks %s:\n%s", resp.Status, m, body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("worker exited with %v after SIGTERM\n%s", waitErr, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("worker still running 10s after SIGTERM\n%s", stderr.String())
	}
	if registered() {
		t.Fatalf("etcd key %s still present after the worker exited", key)
	}
}
