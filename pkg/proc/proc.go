package proc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned by the signal methods of a process that has exited or never
// started.
var ErrNotRunning = errors.New("process is not running")

// Process is one child binary, started and restarted with the same command. Its methods are
// safe for concurrent use.
type Process struct {
	// Name is the process's name in messages and its log's marker lines, e.g. "scheduler-1".
	Name string
	// LogPath is the file its stdout and stderr go to, appended to across restarts.
	LogPath string

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

// New prepares a process running bin with args and the environment env (nil, as for
// exec.Cmd, means this process's environment), logging to logPath. Nothing runs before Start.
func New(name, bin string, args, env []string, logPath string) *Process {
	return &Process{Name: name, LogPath: logPath, bin: bin, args: args, env: env}
}

// Start launches the binary; the previous incarnation, if any, must have exited.
func (p *Process) Start() error {
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
	fmt.Fprintf(logf, "=== proc: start #%d of %s at %s\n", p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should our process die, the kernel kills the child too.
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

// PID is the process id of the current incarnation (0 before the first start).
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

// Stopped reports whether the current incarnation was sent SIGSTOP and not SIGCONT since.
func (p *Process) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped && p.state == nil
}

// Signal sends sig to the current incarnation.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.state != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, ErrNotRunning)
	}
	// Through os.Process, our own child's handle (a pidfd on Linux): never a PID that may
	// have been reused. It may have exited just now and been reaped by the Wait goroutine.
	if err := p.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			err = ErrNotRunning
		}
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

// Wait waits up to timeout for the current incarnation to exit and returns its exit code
// (-1 when a signal ended it).
func (p *Process) Wait(timeout time.Duration) (int, error) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if done == nil {
		return 0, fmt.Errorf("%s: never started", p.Name)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return 0, fmt.Errorf("%s: still running after %v (pid %d)", p.Name, timeout, cmd.Process.Pid)
	}
	// This incarnation's status, even if another has been started since.
	return cmd.ProcessState.ExitCode(), nil
}

// Exited returns a channel closed when the current incarnation exits (nil before the first
// start).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// End stops the current incarnation if it still runs: SIGCONT so that a stopped process
// cannot linger; with a positive grace, SIGTERM and up to grace for it to exit (a profiling
// scheduler writes its profile on SIGTERM); then SIGKILL, and it waits for the exit.
func (p *Process) End(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.Signal(syscall.SIGCONT)
	if grace > 0 && p.Signal(syscall.SIGTERM) == nil {
		if _, err := p.Wait(grace); err == nil {
			return
		}
	}
	_ = p.Signal(syscall.SIGKILL)
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

// Memory is a process's resident set as the kernel reports it.
type Memory struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM (high-water mark of the RSS), bytes
}

// Memory reads /proc/<pid>/status of the current incarnation.
func (p *Process) Memory() (Memory, error) {
	if !p.Running() {
		return Memory{}, fmt.Errorf("%s: memory: %w", p.Name, ErrNotRunning)
	}
	return ReadMemory(p.PID())
}

// ReadMemory reads VmRSS and VmHWM of pid from /proc.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("read memory of pid %d: unexpected %s line %q", pid, k, v)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("read memory of pid %d: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.Peak = n << 10
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	if m.Peak == 0 {
		return Memory{}, fmt.Errorf("read memory of pid %d: no VmHWM in /proc status", pid)
	}
	return m, nil
}
