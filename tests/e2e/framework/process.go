package framework

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotRunning is returned by signal methods of a process that has exited.
var ErrNotRunning = errors.New("process is not running")

// Process is one spawned binary. Its methods are safe for concurrent use.
type Process struct {
	// Name is the process's name in logs, e.g. "scheduler-1".
	Name string
	// ID is the id it is configured with (CAIRN_SCHEDULER_ID or CAIRN_WORKER_ID).
	ID string
	// GRPCAddr is its gRPC listen address (scheduler, gateway); empty for workers.
	GRPCAddr string
	// HTTPAddr is the gateway's REST address; empty for others.
	HTTPAddr string
	// OpsAddr is its /healthz, /readyz, /metrics address.
	OpsAddr string
	// LogPath is the file its stdout and stderr go to (appended to across restarts).
	LogPath string

	t    testing.TB
	bin  string
	args []string
	env  []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	state   *os.ProcessState
	stopped bool // SIGSTOPped and not continued
	starts  int
}

func newProcess(t testing.TB, name, bin string, env []string, logPath string) *Process {
	return &Process{Name: name, t: t, bin: bin, env: env, LogPath: logPath}
}

// start launches the binary; the process must not be running.
func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.state == nil {
		return fmt.Errorf("%s: already running (pid %d)", p.Name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(logf, "=== framework: start #%d of %s at %s\n", p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: should the test binary die, the kernel kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: start %s: %w", p.Name, p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.state, p.stopped = cmd, done, nil, false
	go func() {
		_ = cmd.Wait() // the exit status is read from ProcessState
		_ = logf.Close()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// PID returns the process id of the current incarnation (0 if never started).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the current incarnation has not exited (a stopped process runs).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.state == nil
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.state != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, ErrNotRunning)
	}
	// Signal by the PID of our own child, which cannot have been reused: we have not
	// waited for it yet (state == nil), so it is at worst a zombie.
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
	if _, err := p.Wait(10 * time.Second); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// Stop sends SIGSTOP: the process freezes (no heartbeats, no I/O) until Cont.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.signal(syscall.SIGSTOP); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// Cont sends SIGCONT to a stopped process.
func (p *Process) Cont() {
	p.t.Helper()
	if err := p.signal(syscall.SIGCONT); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// Term sends SIGTERM (graceful shutdown); use Wait for the exit code.
func (p *Process) Term() {
	p.t.Helper()
	if err := p.signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// Wait waits up to timeout for the current incarnation to exit and returns its exit code
// (-1 when it was ended by a signal).
func (p *Process) Wait(timeout time.Duration) (int, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return 0, fmt.Errorf("%s: never started", p.Name)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s: still running after %v (pid %d)", p.Name, timeout, p.PID())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.ExitCode(), nil
}

// Exited returns a channel closed when the current incarnation exits.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Restart starts the binary again with the same configuration (same id and ports). The
// previous incarnation must have exited (Kill it first).
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("framework: restart %s: still running (pid %d); Kill or Term it first", p.Name, p.PID())
	}
	if err := p.start(); err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// end kills the current incarnation if it still runs: SIGCONT first so that a stopped
// process cannot linger, then SIGKILL, then waits for it.
func (p *Process) end() {
	if !p.Running() {
		return
	}
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGKILL)
	_, _ = p.Wait(10 * time.Second)
}

// Log returns the whole log of the process (every incarnation).
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p.Name, err)
	}
	return string(b)
}

// LogTail returns the last n lines of the log.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
