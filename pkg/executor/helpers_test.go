package executor_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
)

// watchdog bounds every Execute in these tests: a hang is reported as a failure naming the
// attempt instead of a test binary killed by -timeout.
const watchdog = 30 * time.Second

func newExecutor(t testing.TB, cfg executor.Config) *executor.Dispatcher {
	t.Helper()
	d, err := executor.New(cfg)
	if err != nil {
		t.Fatalf("executor.New: %v", err)
	}
	return d
}

func execute(t testing.TB, ctx context.Context, d executor.Executor, a *executor.Attempt) *executor.Result {
	t.Helper()
	done := make(chan *executor.Result, 1)
	go func() { done <- d.Execute(ctx, a) }()
	select {
	case res := <-done:
		if res == nil {
			t.Fatal("Execute returned nil")
		}
		if res.Started.IsZero() || res.Finished.Before(res.Started) {
			t.Errorf("Started %v / Finished %v not set in order", res.Started, res.Finished)
		}
		if res.Succeeded != (res.Failure == executor.FailureNone) {
			t.Errorf("Succeeded=%v but Failure=%s", res.Succeeded, res.Failure)
		}
		if res.Succeeded != (res.Error == "") || (res.Err == nil) != (res.Error == "") {
			t.Errorf("Succeeded=%v, Error=%q, Err=%v are inconsistent", res.Succeeded, res.Error, res.Err)
		}
		return res
	case <-time.After(watchdog):
		t.Fatalf("Execute(%s/%s) did not return within %s", a.TaskID, a.Spec.Type, watchdog)
		return nil
	}
}

func shellAttempt(spec executor.ShellSpec) *executor.Attempt {
	return &executor.Attempt{
		RunID: "run-1", TaskID: "task-1", Number: 1, IdempotencyKey: "run-1/task-1",
		Spec: executor.Spec{Type: executor.TypeShell, Shell: &spec},
	}
}

func script(s string) *executor.Attempt { return shellAttempt(executor.ShellSpec{Script: s}) }

func wantFailure(t *testing.T, res *executor.Result, kind executor.FailureKind, target error) {
	t.Helper()
	if res.Failure != kind {
		t.Fatalf("Failure = %s, want %s (error: %q, output: %q)", res.Failure, kind, res.Error, res.Output)
	}
	if target != nil && !errors.Is(res.Err, target) {
		t.Fatalf("Err = %v, want it to wrap %v", res.Err, target)
	}
}

func wantSuccess(t *testing.T, res *executor.Result) {
	t.Helper()
	if !res.Succeeded {
		t.Fatalf("attempt failed: %s: %s (output: %q)", res.Failure, res.Error, res.Output)
	}
}

// outputVars parses "key=value" lines of a result's output.
func outputVars(res *executor.Result) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(string(res.Output)) {
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok {
			m[k] = v
		}
	}
	return m
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil || n <= 1 {
		t.Fatalf("%q is not a process id", s)
	}
	return n
}

// procState returns the state letter of pid from /proc ('R', 'S', 'Z', …), or 0 if pid is gone.
func procState(t *testing.T, pid int) byte {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatalf("read /proc/%d/stat: %v", pid, err)
	}
	i := strings.LastIndexByte(string(data), ')')
	return strings.TrimSpace(string(data[i+1:]))[0]
}

// pollESRCH waits until kill(target, 0) fails with ESRCH (target < 0: a process group).
// Orphans linger as zombies until PID 1 reaps them, so this may take a while; the executor's
// own guarantee (no live member) is checked without waiting, by checkNoLiveProcess.
func pollESRCH(t *testing.T, target int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := syscall.Kill(target, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill(%d, 0) = %v after %s, want ESRCH", target, err, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoLiveProcess fails if any process of group pgid is alive (zombies excepted) right now.
func checkNoLiveProcess(t *testing.T, pgid int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 {
			continue
		}
		if fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			t.Errorf("process %d of group %d is still alive (state %s): %s", pid, pgid, fields[0], s)
		}
	}
}
