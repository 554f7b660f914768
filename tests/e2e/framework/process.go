package framework

import (
	"syscall"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/proc"
)

// Process is one spawned Cairn binary (pkg/proc) with its addresses; the methods that change
// its state fail the test when they cannot. Its methods are safe for concurrent use.
type Process struct {
	*proc.Process

	// ID is the id it is configured with (CAIRN_SCHEDULER_ID or CAIRN_WORKER_ID).
	ID string
	// GRPCAddr is its gRPC listen address (scheduler, gateway); empty for workers.
	GRPCAddr string
	// HTTPAddr is the gateway's REST address; empty for others.
	HTTPAddr string
	// OpsAddr is its /healthz, /readyz, /metrics address.
	OpsAddr string

	t testing.TB
}

func newProcess(t testing.TB, name, bin string, env []string, logPath string) *Process {
	return &Process{Process: proc.New(name, bin, nil, env, logPath), t: t}
}

func (p *Process) must(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatalf("framework: %v", err)
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	p.t.Helper()
	p.must(p.Signal(syscall.SIGKILL))
	_, err := p.Wait(10 * time.Second)
	p.must(err)
}

// Stop sends SIGSTOP: the process freezes (no heartbeats, no I/O) until Cont.
func (p *Process) Stop() {
	p.t.Helper()
	p.must(p.Signal(syscall.SIGSTOP))
}

// Cont sends SIGCONT to a stopped process.
func (p *Process) Cont() {
	p.t.Helper()
	p.must(p.Signal(syscall.SIGCONT))
}

// Term sends SIGTERM (graceful shutdown); use Wait for the exit code.
func (p *Process) Term() {
	p.t.Helper()
	p.must(p.Signal(syscall.SIGTERM))
}

// Restart starts the binary again with the same configuration (same id and ports). The
// previous incarnation must have exited (Kill it first).
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("framework: restart %s: still running (pid %d); Kill or Term it first", p.Name, p.PID())
	}
	p.must(p.Start())
}
