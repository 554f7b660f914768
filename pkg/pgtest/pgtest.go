package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/pglocal"
	"github.com/cairn-io/cairn/pkg/schema"
)

const templateDB = "cairn_template"

var (
	running atomic.Bool
	seq     atomic.Int64

	startOnce sync.Once
	server    *pglocal.Server
	baseDir   string
	startErr  error

	templateOnce sync.Once
	templateErr  error

	watchdog *exec.Cmd
)

// Run runs the tests of m and stops the PostgreSQL server afterwards, if one was started.
func Run(m *testing.M) int {
	running.Store(true)
	code := m.Run()
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := server.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop server: %v\n", err)
		}
		cancel()
	}
	if baseDir != "" {
		_ = os.RemoveAll(baseDir)
	}
	// Last: should this binary be killed while stopping the server, the watchdog still acts.
	if watchdog != nil {
		_ = watchdog.Process.Kill() // our own child, not yet waited for: its PID is still ours
		_ = watchdog.Wait()
		_ = watchdogEnd.Close()
	}
	return code
}

// Server returns the shared server, starting it on first use.
func Server(t testing.TB) *pglocal.Server {
	t.Helper()
	if !running.Load() {
		t.Fatal("pgtest: call pgtest.Run from TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }")
	}
	startOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-pgtest-")
		if err == nil {
			dir, err = filepath.Abs(dir) // clean and absolute: the watchdog matches it exactly
		}
		if err != nil {
			startErr = err
			return
		}
		// The server may run as the postgres user, which must be able to enter the directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			startErr = err
			return
		}
		baseDir = dir
		// Watched from before initdb: a binary killed during start-up leaves nothing either.
		if watchdog, startErr = startWatchdog(dir); startErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, startErr = pglocal.Start(ctx, pglocal.Config{Dir: dir, Settings: map[string]string{"max_connections": "300"}})
	})
	if startErr != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", startErr)
	}
	return server
}

// NewDatabase returns the URL of a new database with the full schema, dropped when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	srv := Server(t)
	templateOnce.Do(func() { templateErr = createTemplate(srv) })
	if templateErr != nil {
		t.Fatalf("pgtest: template database: %v", templateErr)
	}
	return createDatabase(t, srv, templateDB)
}

// NewEmptyDatabase returns the URL of a new database with no schema, dropped when t ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, Server(t), "template0")
}

// NewPool returns a pool on a new migrated database, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func createTemplate(srv *pglocal.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := admin(ctx, srv, "CREATE DATABASE "+templateDB+" TEMPLATE template0"); err != nil {
		return err
	}
	return schema.Up(ctx, srv.URL(templateDB))
}

func createDatabase(t testing.TB, srv *pglocal.Server, template string) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin(ctx, srv, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin(ctx, srv, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return srv.URL(name)
}

// admin runs one statement on the maintenance database. CREATE DATABASE from a template
// fails if another session is connected to the template, so statements are serialised.
var adminMu sync.Mutex

func admin(ctx context.Context, srv *pglocal.Server, sql string) error {
	adminMu.Lock()
	defer adminMu.Unlock()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// watchdogScript blocks reading fd 3, the read end of a pipe whose write end only this test
// binary holds, so it reads EOF exactly when the binary has exited, however it ended (even if
// its PID is reused). It then ends the postmaster of data directory $2 and removes base
// directory $1. Run stops the server, removes the directory and then ends the watchdog
// itself; the watchdog only acts when the binary died without getting there (a -timeout
// panic, kill -9), so no PostgreSQL outlives its tests.
//
// The PID in postmaster.pid is signalled only if that process's command line names this data
// directory: a stale file (the postmaster crashed earlier) may hold a PID reused since. A
// server still starting gets 5 s to write the file. SIGQUIT is PostgreSQL's immediate
// shutdown; SIGKILL follows if it has not exited after 10 s.
const watchdogScript = `
case "$1" in /*/cairn-pgtest-*) ;; *) echo "pgtest-watchdog: '$1' is not a pgtest directory" >&2; exit 2 ;; esac
case "$2" in "$1"/data) ;; *) echo "pgtest-watchdog: '$2' is not the data directory of '$1'" >&2; exit 2 ;; esac
cat <&3 >/dev/null
data="$2"
i=0
while [ -d "$data" ] && [ ! -f "$data/postmaster.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
ours() { [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data"; }
if ours && kill -QUIT "$pid" 2>/dev/null; then
	i=0
	while ours && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if ours; then kill -KILL "$pid" 2>/dev/null; sleep 0.5; fi
fi
rm -rf "$1"
`

// watchdogEnd is the write end of the watchdog's pipe: held open, never written, until this
// process exits.
var watchdogEnd *os.File

// startWatchdog starts the watchdog of the server under baseDir (absolute and clean), in its
// own session so that a signal to the test binary's process group does not end it first.
func startWatchdog(baseDir string) (*exec.Cmd, error) {
	r, w, err := os.Pipe() // both ends close-on-exec: no other child inherits the write end
	if err != nil {
		return nil, fmt.Errorf("start the watchdog of %s: %w", baseDir, err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog", baseDir, filepath.Join(baseDir, "data"))
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = filepath.Dir(baseDir)
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("start the watchdog of %s: %w", baseDir, err)
	}
	watchdogEnd = w
	return cmd, nil
}
