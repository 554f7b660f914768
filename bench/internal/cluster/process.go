package cluster

import (
	"syscall"
	"time"

	"github.com/cairn-io/cairn/pkg/proc"
)

// Process is one spawned Cairn binary (pkg/proc) with its addresses. Its methods are safe
// for concurrent use.
type Process struct {
	*proc.Process

	ID       string // CAIRN_SCHEDULER_ID / CAIRN_WORKER_ID
	GRPCAddr string // scheduler, gateway
	HTTPAddr string // gateway REST
	OpsAddr  string // /healthz, /readyz, /metrics
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_, err := p.Wait(10 * time.Second)
	return err
}
