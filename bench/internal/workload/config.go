package workload

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Names lists every workload in the order Run runs them.
var Names = []string{"ceiling", "validate", "throughput", "hop", "submit", "pending", "recovery"}

// Config is every parameter of the benchmark.
type Config struct {
	Only []string // workloads to run; empty for all

	Wide     int   // tasks of the wide run (throughput)
	Runs     int   // concurrent runs (throughput)
	RunTasks int   // tasks per concurrent run (throughput)
	Workers  []int // worker processes per throughput case
	Slots    int   // slots per worker (every workload but throughput)
	// ThroughputSlots are the slots per worker of the throughput cases: each value is a case
	// (for each worker count and shape), named throughput.<shape>.w<N>.s<slots>.
	ThroughputSlots []int

	Chain          int           // tasks of the hop-latency chain
	Clients        int           // concurrent submitting clients
	SubmitDuration time.Duration // per protocol
	Sizes          []int         // task counts of the validation sizes
	Pending        int           // queued tasks held by the leader (pending)
	PendingRun     int           // tasks per run in the pending workload

	PgbenchDuration time.Duration // per client count
	PgbenchClients  []int

	SessionTTL time.Duration
	LeaseTTL   time.Duration
	AdoptGrace time.Duration

	Timeout    time.Duration // bound on each workload's wait for its runs
	CPUProfile string        // write a CPU profile of the leader during the first wide case
	PGTop      int           // print the top statements by PostgreSQL execution time per throughput case
}

// Default is the full benchmark (issue #6).
func Default() Config {
	return Config{
		Wide: 10_000, Runs: 1000, RunTasks: 10, Workers: []int{1, 3}, Slots: 16, ThroughputSlots: []int{16, 256},
		Chain: 200, Clients: 32, SubmitDuration: 10 * time.Second,
		Sizes: []int{1_000, 10_000, 100_000}, Pending: 100_000, PendingRun: 10_000,
		PgbenchDuration: 20 * time.Second, PgbenchClients: []int{1, 16},
		SessionTTL: 5 * time.Second, LeaseTTL: 10 * time.Second, AdoptGrace: 10 * time.Second,
		Timeout: 4 * time.Minute,
	}
}

// Quick is a small run of every workload, for the test.
func Quick() Config {
	return Config{
		Wide: 200, Runs: 20, RunTasks: 10, Workers: []int{1, 2}, Slots: 8, ThroughputSlots: []int{8},
		Chain: 20, Clients: 4, SubmitDuration: time.Second,
		Sizes: []int{100, 1_000}, Pending: 1_000, PendingRun: 500,
		PgbenchDuration: time.Second, PgbenchClients: []int{1, 4},
		SessionTTL: 2 * time.Second, LeaseTTL: 2 * time.Second, AdoptGrace: 2 * time.Second,
		Timeout: time.Minute,
	}
}

// Validate reports the first bad setting.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("--%s must be at least 1, got %d", name, v))
		}
	}
	pos("wide", c.Wide)
	pos("runs", c.Runs)
	pos("run-tasks", c.RunTasks)
	pos("slots", c.Slots)
	pos("chain", c.Chain)
	pos("clients", c.Clients)
	pos("pending", c.Pending)
	pos("pending-run", c.PendingRun)
	if c.Chain < 2 {
		errs = append(errs, fmt.Errorf("--chain must be at least 2 to have a hop, got %d", c.Chain))
	}
	if c.Wide > 10_000 || c.PendingRun > 10_000 || c.RunTasks > 10_000 || c.Chain > 10_000 {
		errs = append(errs, errors.New("a workflow holds at most 10,000 tasks (the scheduler's limit): lower --wide, --pending-run, --run-tasks or --chain"))
	}
	if len(c.Workers) == 0 {
		errs = append(errs, errors.New("--workers needs at least one count"))
	}
	for _, w := range c.Workers {
		pos("workers (each count)", w)
	}
	if len(c.ThroughputSlots) == 0 {
		errs = append(errs, errors.New("--throughput-slots needs at least one count"))
	}
	for _, n := range c.ThroughputSlots {
		pos("throughput-slots (each count)", n)
	}
	for _, n := range c.Sizes {
		pos("validate (each size)", n)
	}
	for _, n := range c.PgbenchClients {
		pos("pgbench-clients (each count)", n)
	}
	for name, d := range map[string]time.Duration{"submit-duration": c.SubmitDuration, "pgbench-duration": c.PgbenchDuration,
		"session-ttl": c.SessionTTL, "lease-ttl": c.LeaseTTL, "adopt-grace": c.AdoptGrace, "timeout": c.Timeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, got %v", name, d))
		}
	}
	for _, w := range c.Only {
		if !slices.Contains(Names, w) {
			errs = append(errs, fmt.Errorf("--only: unknown workload %q (known: %s)", w, strings.Join(Names, ", ")))
		}
	}
	return errors.Join(errs...)
}

func (c Config) selected(name string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, name) }
