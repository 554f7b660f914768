package pglocal_test

import (
	"context"
	"os"
	"testing"
	"time"

	"net"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/pglocal"
)

// tempDir returns a directory the postgres user can enter (t.TempDir is mode 0700).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-pglocal-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestStartStopRestartKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := pglocal.Config{Dir: tempDir(t)}
	srv, err := pglocal.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	exec := func(sql string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, srv.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	if got := exec("SELECT 1"); got != 1 {
		t.Fatalf("SELECT 1 = %d", got)
	}
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, srv.URL("postgres")); err == nil {
		t.Fatal("connected to a stopped server")
	}
	srv2, err := pglocal.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	if got := exec("SELECT x FROM kept"); got != 42 {
		t.Fatalf("after restart x = %d, want 42", got)
	}
}

func TestTCPPortOnLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pglocal.Start(ctx, pglocal.Config{Dir: tempDir(t), Port: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, srv.TCPURL("postgres"))
	if err != nil {
		t.Fatalf("tcp connect: %v", err)
	}
	conn.Close(ctx)
}

func TestMissingDirIsAnError(t *testing.T) {
	if _, err := pglocal.Start(context.Background(), pglocal.Config{}); err == nil {
		t.Fatal("Start with no Dir succeeded")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
