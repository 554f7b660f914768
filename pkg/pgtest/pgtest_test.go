package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/schema"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.NewPool(t), pgtest.NewPool(t)
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table created in one test database is visible in another")
	}
}

func TestNewDatabaseIsMigrated(t *testing.T) {
	url := pgtest.NewDatabase(t)
	v, dirty, err := schema.Version(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if v == 0 || dirty {
		t.Fatalf("schema version = %d dirty=%v, want a clean applied version", v, dirty)
	}
}

// TestWatchdogStopsServerOfDeadBinary: a test binary killed with SIGKILL (Run's cleanup never
// runs) leaves no PostgreSQL behind: its watchdog stops the postmaster and removes the
// directory. The test runs itself as that binary.
func TestWatchdogStopsServerOfDeadBinary(t *testing.T) {
	if os.Getenv("PGTEST_WATCHDOG_CHILD") == "1" {
		srv := pgtest.Server(t)
		b, err := os.ReadFile(filepath.Join(srv.DataDir(), "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _, _ := strings.Cut(string(b), "\n")
		fmt.Printf("postmaster=%s dir=%s\n", pid, filepath.Dir(srv.DataDir()))
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // not reached
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWatchdogStopsServerOfDeadBinary$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "PGTEST_WATCHDOG_CHILD=1")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL; output:\n%s", err, out)
	}
	m := regexp.MustCompile(`postmaster=(\d+) dir=(\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("child printed no postmaster PID:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	dir := m[2]
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		_, statErr := os.Stat(dir)
		if (errors.Is(err, syscall.ESRCH) || zombie(pid)) && errors.Is(statErr, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the test binary died: postmaster %d signal 0 → %v, its directory %s → %v; want both gone", pid, err, dir, statErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zombie reports whether pid has exited but was not reaped yet (an orphan under a PID 1 that
// does not reap, as in some containers): gone for this test's purpose.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
