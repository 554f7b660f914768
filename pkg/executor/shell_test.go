package executor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
)

func TestShellSuccess(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	res := execute(t, t.Context(), d, script(`echo "$((6*7))"; echo to-stderr >&2`))
	wantSuccess(t, res)
	if res.ExitCode != 0 || res.HTTPStatus != 0 {
		t.Errorf("ExitCode %d, HTTPStatus %d; want 0, 0", res.ExitCode, res.HTTPStatus)
	}
	if got := string(res.Output); got != "42\nto-stderr\n" {
		t.Errorf("Output = %q, want stdout and stderr combined", got)
	}
	if res.OutputTruncated {
		t.Error("OutputTruncated on a short output")
	}
}

func TestShellNonZeroExit(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	res := execute(t, t.Context(), d, script(`echo before; exit 3`))
	wantFailure(t, res, executor.FailureExitCode, executor.ErrExitCode)
	if res.ExitCode != 3 {
		t.Errorf("ExitCode = %d, want 3", res.ExitCode)
	}
	if !strings.Contains(res.Error, "exit code 3") || string(res.Output) != "before\n" {
		t.Errorf("Error %q / Output %q", res.Error, res.Output)
	}

	res = execute(t, t.Context(), d, script(`kill -KILL $$`))
	wantFailure(t, res, executor.FailureExitCode, executor.ErrExitCode)
	if res.ExitCode != -1 || !strings.Contains(res.Error, "killed by signal 9") {
		t.Errorf("self-killed: ExitCode %d, Error %q; want -1 and the signal named", res.ExitCode, res.Error)
	}
}

func TestShellOutputKeepsTheTail(t *testing.T) {
	const size = 1 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte('a' + (i*7+i/977)%26)
	}
	file := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newExecutor(t, executor.Config{})
	// Half on stdout, half on stderr: both reach the one capped output.
	res := execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{
		Script: `head -c 524288 "$F"; tail -c 524288 "$F" >&2`, Env: map[string]string{"F": file},
	}))
	wantSuccess(t, res)
	if !res.OutputTruncated {
		t.Error("OutputTruncated = false after 1 MiB of output")
	}
	if len(res.Output) != executor.DefaultOutputCap {
		t.Fatalf("len(Output) = %d, want %d", len(res.Output), executor.DefaultOutputCap)
	}
	if !bytes.Equal(res.Output, data[size-executor.DefaultOutputCap:]) {
		t.Error("Output is not the last 64 KiB written")
	}

	small := newExecutor(t, executor.Config{OutputCap: 10})
	res = execute(t, t.Context(), small, script(`printf 0123456789abcdef`))
	if string(res.Output) != "6789abcdef" || !res.OutputTruncated {
		t.Errorf("cap 10: Output %q, truncated %v; want the last 10 bytes, truncated", res.Output, res.OutputTruncated)
	}
}

func TestShellArgvIsNotResplit(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	args := []string{"a b", `"double"`, "it's", "$HOME", "*", "", "semi;colon && echo pwned", "back\\slash", "new\nline"}
	res := execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{Argv: append([]string{"printf", "[%s]"}, args...)}))
	wantSuccess(t, res)
	var want strings.Builder
	for _, a := range args {
		fmt.Fprintf(&want, "[%s]", a)
	}
	if got := string(res.Output); got != want.String() {
		t.Errorf("Output = %q, want %q", got, want.String())
	}
}

func TestShellEnvironment(t *testing.T) {
	t.Setenv("CAIRN_TEST_WORKER_SECRET", "must-not-leak")
	d := newExecutor(t, executor.Config{})
	a := shellAttempt(executor.ShellSpec{
		Argv: []string{"env"},
		Env:  map[string]string{"MODE": "full", "SPACED": "a b  c", "EMPTY": ""},
	})
	a.Number, a.RunID, a.TaskID, a.IdempotencyKey = 2, "r-42", "extract", "r-42/extract"
	res := execute(t, t.Context(), d, a)
	wantSuccess(t, res)
	vars := outputVars(res)
	for k, v := range map[string]string{
		"MODE": "full", "SPACED": "a b  c", "EMPTY": "",
		"CAIRN_RUN_ID": "r-42", "CAIRN_TASK_ID": "extract", "CAIRN_ATTEMPT": "2",
		"CAIRN_IDEMPOTENCY_KEY": "r-42/extract", "PATH": os.Getenv("PATH"),
	} {
		if got, ok := vars[k]; !ok || got != v {
			t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := vars["CAIRN_TEST_WORKER_SECRET"]; ok {
		t.Error("the worker's environment leaked into the task")
	}
	allowed := []string{"PATH", "HOME", "LANG", "TMPDIR", "MODE", "SPACED", "EMPTY",
		"CAIRN_RUN_ID", "CAIRN_TASK_ID", "CAIRN_ATTEMPT", "CAIRN_IDEMPOTENCY_KEY"}
	for k := range vars {
		if !slices.Contains(allowed, k) {
			t.Errorf("unexpected variable %s in the task's environment", k)
		}
	}

	// An explicit base environment replaces the default entirely; no key, no variable.
	bare := newExecutor(t, executor.Config{BaseEnv: []string{"ONLY=this"}})
	a = shellAttempt(executor.ShellSpec{Argv: []string{"/usr/bin/env"}})
	a.IdempotencyKey = ""
	res = execute(t, t.Context(), bare, a)
	wantSuccess(t, res)
	if got, want := string(res.Output), "CAIRN_ATTEMPT=1\nCAIRN_RUN_ID=run-1\nCAIRN_TASK_ID=task-1\nONLY=this\n"; got != want {
		t.Errorf("environment = %q, want %q", got, want)
	}

	// The program is looked up on the task's PATH, not the worker's.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "cairn-test-tool"), []byte("#!/bin/sh\necho tool ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res = execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{
		Argv: []string{"cairn-test-tool"}, Env: map[string]string{"PATH": bin + ":/usr/bin:/bin"},
	}))
	wantSuccess(t, res)
	if string(res.Output) != "tool ran\n" {
		t.Errorf("Output = %q", res.Output)
	}

	for _, bad := range []map[string]string{
		{"CAIRN_ATTEMPT": "7"}, {"CAIRN_RUN_ID": "spoofed"}, {"A=B": "x"}, {"": "x"}, {"NUL": "a\x00b"},
	} {
		res = execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{Argv: []string{"true"}, Env: bad}))
		wantFailure(t, res, executor.FailureInternal, executor.ErrInvalidEnv)
	}
}

func TestShellExecutableNotFound(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	res := execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{Argv: []string{"cairn-no-such-program"}}))
	wantFailure(t, res, executor.FailureInternal, exec.ErrNotFound)
	if !strings.Contains(res.Error, "cairn-no-such-program") || res.ExitCode != -1 {
		t.Errorf("Error %q does not name the program, or ExitCode %d != -1", res.Error, res.ExitCode)
	}
	res = execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{Argv: []string{"/nonexistent/prog"}}))
	wantFailure(t, res, executor.FailureInternal, os.ErrNotExist)
}

func TestShellWorkdir(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p string) string {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(target, name string) string {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
		return name
	}
	allowed := mk(filepath.Join(base, "allowed"))
	sub := mk(filepath.Join(allowed, "sub"))
	other := mk(filepath.Join(base, "other"))
	file := filepath.Join(allowed, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	escape := link(other, filepath.Join(allowed, "escape"))
	inside := link(sub, filepath.Join(allowed, "inside"))
	// A root given through a symlink is resolved too.
	rootLink := link(allowed, filepath.Join(base, "root-link"))
	// A sibling whose name extends the root's must not count as inside it.
	sibling := mk(filepath.Join(base, "allowed-not"))

	d := newExecutor(t, executor.Config{AllowedWorkdirRoots: []string{rootLink}})
	pwd := func(dir string) *executor.Result {
		return execute(t, t.Context(), d, shellAttempt(executor.ShellSpec{Script: "pwd -P", Workdir: dir}))
	}
	for dir, want := range map[string]string{allowed: allowed, sub: sub, inside: sub, sub + "/": sub, rootLink + "/sub": sub} {
		res := pwd(dir)
		wantSuccess(t, res)
		if got := strings.TrimSpace(string(res.Output)); got != want {
			t.Errorf("workdir %s: ran in %q, want %q", dir, got, want)
		}
	}
	for name, dir := range map[string]string{
		"outside":        other,
		"dotdot escape":  allowed + "/../other",
		"dotdot inside":  sub + "/../sub",
		"symlink escape": escape,
		"sibling prefix": sibling,
		"missing":        filepath.Join(allowed, "missing"),
		"not a dir":      file,
		"relative":       "allowed/sub",
		"root of fs":     "/",
	} {
		res := pwd(dir)
		wantFailure(t, res, executor.FailureInternal, executor.ErrWorkdir)
		if !strings.Contains(res.Error, "working directory") {
			t.Errorf("%s: Error %q does not say what was rejected", name, res.Error)
		}
	}

	// No roots configured: a task may not choose a workdir at all.
	none := newExecutor(t, executor.Config{})
	res := execute(t, t.Context(), none, shellAttempt(executor.ShellSpec{Script: "pwd", Workdir: allowed}))
	wantFailure(t, res, executor.FailureInternal, executor.ErrWorkdir)
	if !strings.Contains(res.Error, "no allowed workdir roots") {
		t.Errorf("Error %q does not explain the empty-roots policy", res.Error)
	}
}

func TestShellScratchWorkdir(t *testing.T) {
	scratch := t.TempDir()
	d := newExecutor(t, executor.Config{ScratchDir: scratch})
	res := execute(t, t.Context(), d, script(`pwd -P; touch left-behind; ls -ld . | cut -c1-10`))
	wantSuccess(t, res)
	lines := strings.Split(strings.TrimSpace(string(res.Output)), "\n")
	if len(lines) != 2 || filepath.Dir(lines[0]) != scratch || lines[1] != "drwx------" {
		t.Errorf("ran in %q; want a private directory under %s", res.Output, scratch)
	}
	if entries, err := os.ReadDir(scratch); err != nil || len(entries) != 0 {
		t.Errorf("scratch dir not removed: %v %v", entries, err)
	}
}

func TestShellTimeout(t *testing.T) {
	d := newExecutor(t, executor.Config{KillGrace: time.Second})
	a := script(`echo started; sleep 1000`)
	a.Timeout = 300 * time.Millisecond
	res := execute(t, t.Context(), d, a)
	wantFailure(t, res, executor.FailureTimeout, executor.ErrTimeout)
	if res.ExitCode != -1 || string(res.Output) != "started\n" || !strings.Contains(res.Error, "300ms") {
		t.Errorf("ExitCode %d, Output %q, Error %q", res.ExitCode, res.Output, res.Error)
	}
}

func TestShellCancelCarriesCause(t *testing.T) {
	d := newExecutor(t, executor.Config{KillGrace: time.Second})
	cause := errors.New("run cancelled by alice")
	ctx, cancel := context.WithCancelCause(t.Context())
	a := script(`echo started; sleep 1000`)
	a.Timeout = time.Minute
	go func() {
		time.Sleep(200 * time.Millisecond)
		cancel(cause)
	}()
	res := execute(t, ctx, d, a)
	wantFailure(t, res, executor.FailureCancelled, cause)
	if !strings.Contains(res.Error, "run cancelled by alice") {
		t.Errorf("Error %q does not carry the cause", res.Error)
	}

	// A deadline of the caller's context is a cancellation too, not the attempt's timeout.
	ctx, stop := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer stop()
	res = execute(t, ctx, d, a)
	wantFailure(t, res, executor.FailureCancelled, context.DeadlineExceeded)

	// Already cancelled: nothing starts.
	ctx, cancel = context.WithCancelCause(t.Context())
	cancel(cause)
	res = execute(t, ctx, d, script(`echo should-not-run`))
	wantFailure(t, res, executor.FailureCancelled, cause)
	if len(res.Output) != 0 {
		t.Errorf("Output %q: the command ran after cancellation", res.Output)
	}
}

// The key property: after a timeout nothing of the task survives — not a background child,
// not a subshell that ignores SIGTERM — even though they hold the output pipe open.
func TestShellTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	d := newExecutor(t, executor.Config{KillGrace: 500 * time.Millisecond})
	a := script(`
echo "leader=$$"
echo "pgid=$(cut -d' ' -f5 /proc/self/stat)"
sleep 1000 &
echo "bg=$!"
( trap 'echo got-term' TERM; while :; do sleep 0.05; done ) &
echo "stubborn=$!"
wait`)
	a.Timeout = 500 * time.Millisecond
	res := execute(t, t.Context(), d, a)
	wantFailure(t, res, executor.FailureTimeout, executor.ErrTimeout)
	vars := outputVars(res)
	leader, pgid, bg, stubborn := atoi(t, vars["leader"]), atoi(t, vars["pgid"]), atoi(t, vars["bg"]), atoi(t, vars["stubborn"])
	if pgid != leader {
		t.Fatalf("the task ran in process group %d, not its own (%d)", pgid, leader)
	}
	if !strings.Contains(string(res.Output), "got-term") {
		t.Errorf("Output %q: the stubborn subshell never saw SIGTERM", res.Output)
	}
	// The guarantee of Execute: no live process of the group when it returns.
	checkNoLiveProcess(t, pgid)
	for _, pid := range []int{leader, bg, stubborn} {
		if s := procState(t, pid); s != 0 && s != 'Z' {
			t.Errorf("process %d is alive (state %c) after Execute returned", pid, s)
		}
	}
	// And eventually (once PID 1 has reaped the orphans) the group does not exist at all.
	pollESRCH(t, -pgid, 15*time.Second)
	pollESRCH(t, bg, 15*time.Second)
	pollESRCH(t, stubborn, 15*time.Second)
}

// A grandchild that outlives the shell parent is killed too, after a successful exit.
func TestShellLeftoverChildrenAreKilledAfterExit(t *testing.T) {
	d := newExecutor(t, executor.Config{KillGrace: 300 * time.Millisecond})
	res := execute(t, t.Context(), d, script(`
echo "leader=$$"
sleep 1000 &
echo "bg=$!"
( trap '' TERM; sleep 1000 ) &
echo "stubborn=$!"
exit 0`))
	wantSuccess(t, res)
	vars := outputVars(res)
	pgid, bg, stubborn := atoi(t, vars["leader"]), atoi(t, vars["bg"]), atoi(t, vars["stubborn"])
	checkNoLiveProcess(t, pgid)
	pollESRCH(t, -pgid, 15*time.Second)
	pollESRCH(t, bg, 15*time.Second)
	pollESRCH(t, stubborn, 15*time.Second)
}

func TestShellConcurrentAttempts(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			a := script(`echo "$CAIRN_TASK_ID"`)
			a.TaskID = fmt.Sprintf("t%d", i)
			res := d.Execute(t.Context(), a)
			if !res.Succeeded || string(res.Output) != a.TaskID+"\n" {
				t.Errorf("attempt %d: %s %q %q", i, res.Failure, res.Error, res.Output)
			}
		})
	}
	wg.Wait()
}
