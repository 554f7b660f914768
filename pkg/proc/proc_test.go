package proc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/proc"
)

func TestLifecycle(t *testing.T) {
	log := filepath.Join(t.TempDir(), "sleeper.log")
	p := proc.New("sleeper", "/bin/sh", []string{"-c", `echo "up $$"; exec sleep 60`}, nil, log)
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, proc.ErrNotRunning) {
		t.Fatalf("signal before start: %v, want ErrNotRunning", err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), "up "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sleeper wrote nothing:\n%s", p.Log())
		}
	}
	if err := p.Start(); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second start while running: %v, want already running", err)
	}
	first := p.PID()
	if first <= 0 || !p.Running() {
		t.Fatalf("pid %d running %v after start", first, p.Running())
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil || !p.Stopped() {
		t.Fatalf("SIGSTOP: %v, stopped %v", err, p.Stopped())
	}
	m, err := p.Memory()
	if err != nil || m.Peak <= 0 || m.RSS <= 0 {
		t.Errorf("memory of the sleeper: %+v, %v", m, err)
	}
	p.End(0) // a stopped process is continued, then killed
	if p.Running() || p.Stopped() {
		t.Fatalf("after End: running %v stopped %v", p.Running(), p.Stopped())
	}
	if code, err := p.Wait(time.Second); err != nil || code != -1 {
		t.Errorf("exit of a killed process: %d, %v; want -1", code, err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, proc.ErrNotRunning) {
		t.Errorf("signal after exit: %v, want ErrNotRunning", err)
	}

	// Restart: a new incarnation, appended to the same log after its own marker.
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.PID() == first {
		t.Errorf("restart kept pid %d", first)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(p.Log(), "up ") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second incarnation wrote nothing:\n%s", p.Log())
		}
	}
	p.End(5 * time.Second) // SIGTERM ends sleep
	lg := p.Log()
	for _, want := range []string{"=== proc: start #1 of sleeper", "=== proc: start #2 of sleeper", "up "} {
		if !strings.Contains(lg, want) {
			t.Errorf("log lacks %q:\n%s", want, lg)
		}
	}
	if tail := p.LogTail(1); !strings.HasPrefix(tail, "up ") {
		t.Errorf("last log line %q, want the second incarnation's", tail)
	}
}

func TestExitCodeAndWaitTimeout(t *testing.T) {
	dir := t.TempDir()
	p := proc.New("three", "/bin/sh", []string{"-c", "exit 3"}, nil, filepath.Join(dir, "three.log"))
	if _, err := p.Wait(time.Second); err == nil {
		t.Error("wait before start: no error")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if code, err := p.Wait(time.Second); err != nil || code != 3 {
		t.Errorf("exit code %d, %v; want 3", code, err)
	}

	slow := proc.New("slow", "/bin/sh", []string{"-c", "exec sleep 60"}, nil, filepath.Join(dir, "slow.log"))
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	defer slow.End(0)
	if _, err := slow.Wait(50 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("wait on a running process: %v, want still running", err)
	}

	missing := proc.New("missing", filepath.Join(dir, "no-such-binary"), nil, nil, filepath.Join(dir, "m.log"))
	if err := missing.Start(); err == nil || missing.Running() {
		t.Errorf("start of a missing binary: %v, running %v", err, missing.Running())
	}
}

func TestReadMemoryOfUnknownPID(t *testing.T) {
	if _, err := proc.ReadMemory(os.Getpid()); err != nil {
		t.Errorf("own memory: %v", err)
	}
	if _, err := proc.ReadMemory(1 << 30); err == nil {
		t.Error("memory of a PID that cannot exist: no error")
	}
}

// TestEndKillsAfterGrace: a process that ignores SIGTERM is killed once the grace is over.
func TestEndKillsAfterGrace(t *testing.T) {
	p := proc.New("stubborn", "/bin/sh", []string{"-c", `trap '' TERM; echo ready; while :; do sleep 0.1; done`}, nil,
		filepath.Join(t.TempDir(), "stubborn.log"))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), "ready"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the shell did not start:\n%s", p.Log())
		}
	}
	p.End(300 * time.Millisecond)
	if p.Running() {
		t.Fatal("still running after End")
	}
	if code, err := p.Wait(time.Second); err != nil || code != -1 {
		t.Errorf("exit %d, %v; want -1 (SIGKILL after the ignored SIGTERM)", code, err)
	}
}
