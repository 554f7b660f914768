// Command cairn-worker executes the tasks the Cairn leader assigns to it: it registers in etcd
// under a lease, follows the leader through the election, pulls work over one bidirectional
// gRPC stream by granting credits, runs shell, http and noop tasks in a pool of slots, and
// drains on SIGTERM. `cairn-worker --help` lists its flags; docs/worker.md describes it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-io/cairn/services/worker/internal/worker"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := worker.ParseFlags(os.Args[1:], nil, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairn-worker: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cairn-worker: %v\n", err)
		return 1
	}
	return 0
}
