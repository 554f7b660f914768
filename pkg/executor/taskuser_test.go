package executor_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
)

// TestShellRunsAsTheTaskUser: with TaskCredential a shell task runs as that user, in a
// scratch directory it owns, and cannot read a 0600 file of the worker's user (its key).
func TestShellRunsAsTheTaskUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a task as another user needs root (the test runs as uid " + strconv.Itoa(os.Geteuid()) + ")")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run tasks as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: the task user must be able to reach the scratch directory.
	root, err := os.MkdirTemp("", "cairn-taskuser-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	// The key 0600 in a directory others may enter: its mode alone keeps the task out. (The
	// documented layout also makes the directory 0700.)
	secretDir := filepath.Join(root, "tls")
	if err := os.Mkdir(secretDir, 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(secretDir, "worker-key.pem")
	if err := os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newExecutor(t, executor.Config{ScratchDir: root, KillGrace: time.Second,
		TaskCredential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}})

	res := execute(t, t.Context(), d, script(`id -u; id -G; touch here && echo wrote-scratch`))
	wantSuccess(t, res)
	lines := strings.Fields(string(res.Output))
	if len(lines) < 3 || lines[0] != u.Uid || lines[len(lines)-1] != "wrote-scratch" {
		t.Fatalf("output %q, want uid %s and a writable scratch directory", res.Output, u.Uid)
	}
	for _, g := range lines[1 : len(lines)-1] {
		if g == "0" {
			t.Errorf("the task kept the root group: id -G = %v", lines[1:len(lines)-1])
		}
	}

	res = execute(t, t.Context(), d, script(`cat "`+key+`"`))
	if res.Succeeded || strings.Contains(string(res.Output), "PRIVATE KEY") {
		t.Fatalf("the task read the worker's key: %s %q", res.Error, res.Output)
	}
	if !strings.Contains(string(res.Output), "Permission denied") {
		t.Errorf("output %q, want a permission error", res.Output)
	}
	// Control: the worker's user reads it (so the refusal is the task user's).
	if _, err := os.ReadFile(key); err != nil {
		t.Fatal(err)
	}
}
