package cluster

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

// ErrNotRunning is returned by the signal methods of a process that has exited.
var ErrNotRunning = errors.New("process is not running")

// Process is one spawned binary. Its methods are safe for concurrent use.
type Process struct {
	Name     string // e.g. "scheduler-1"
	ID       string // CAIRN_SCHEDULER_ID / CAIRN_WORKER_ID
	GRPCAddr string // scheduler, gateway
	HTTPAddr string // gateway REST
	OpsAddr  string // /healthz, /readyz, /metrics
	LogPath  string // stdout and stderr, appended across restarts

	bin  string
	args []string
	env  []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
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
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should the benchmark die, the kernel kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: start %s: %w", p.Name, p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.state = cmd, done, nil
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

// Running reports whether the current incarnation has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.state == nil
}

// Signal sends sig to the current incarnation, by the PID of our own not-yet-waited child
// (which therefore cannot have been reused).
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.state != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, ErrNotRunning)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_, err := p.Wait(10 * time.Second)
	return err
}

// Wait waits up to timeout for the current incarnation to exit and returns its exit code
// (-1 when a signal ended it).
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

// end stops the current incarnation if it still runs: SIGTERM and a grace period when
// graceful (a profiling scheduler writes its profile on SIGTERM), then SIGKILL.
func (p *Process) end(graceful bool) {
	if !p.Running() {
		return
	}
	if graceful {
		if p.Signal(syscall.SIGTERM) == nil {
			if _, err := p.Wait(30 * time.Second); err == nil {
				return
			}
		}
	}
	_ = p.Signal(syscall.SIGKILL)
	_, _ = p.Wait(10 * time.Second)
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

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p.Name, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
