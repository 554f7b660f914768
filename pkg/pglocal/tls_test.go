package pglocal_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/pglocal"
	"github.com/cairn-io/cairn/pkg/schema"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// TestVerifyFull: a PostgreSQL with ssl=on and a certificate from pkg/tlsconf (for
// localhost only) is reached with sslmode=verify-full&sslrootcert=<CA> — by pgx, by
// pgxpool as the scheduler and gateway build it, and by the migrations (golang-migrate) —
// and the connection is TLS. verify-full refuses another CA, and a host name the
// certificate does not carry (127.0.0.1 here), even though it is the same server.
func TestVerifyFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := tempDir(t)
	tlsDir := filepath.Join(dir, "tls")
	d, err := tlsconf.CreateDir(tlsDir, tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := d.Issue("server", tlsconf.CertRequest{DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	// The server reads its key as its own user, and PostgreSQL insists on mode 0600.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{tlsDir, cert, key} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	port := freePort(t)
	srv, err := pglocal.Start(ctx, pglocal.Config{Dir: filepath.Join(dir, "pg"), Port: port,
		Settings: map[string]string{"ssl": "on", "ssl_cert_file": cert, "ssl_key_file": key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	dsn := func(host, db, ca string) string {
		return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=verify-full&sslrootcert=%s",
			net.JoinHostPort(host, strconv.Itoa(port)), db, url.QueryEscape(ca))
	}
	conn, err := pgx.Connect(ctx, dsn("localhost", "postgres", d.CAFile()))
	if err != nil {
		t.Fatalf("verify-full with the CA: %v", err)
	}
	var ssl bool
	if err := conn.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("pg_stat_ssl.ssl = %v (%v), want a TLS connection", ssl, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE cairn"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// The migrations and the pool the services build take the same URL unchanged.
	cairnURL := dsn("localhost", "cairn", d.CAFile())
	if err := schema.Up(ctx, cairnURL); err != nil {
		t.Fatalf("migrations over verify-full: %v", err)
	}
	pcfg, err := pgxpool.ParseConfig(cairnURL)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'task_runs'`).Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("after the migrations: %d task_runs tables (%v)", tables, err)
	}
	pool.Close()

	other, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "other"), tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, dsn("localhost", "postgres", other.CAFile())); err == nil {
		c.Close(ctx)
		t.Error("verify-full accepted a server certificate of another CA")
	}
	if c, err := pgx.Connect(ctx, dsn("127.0.0.1", "postgres", d.CAFile())); err == nil {
		c.Close(ctx)
		t.Error("verify-full accepted a certificate for localhost when connecting to 127.0.0.1")
	}
}
