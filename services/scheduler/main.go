// Command cairn-scheduler is a Cairn scheduler replica. Replicas elect one leader through etcd;
// the leader stores workflows, creates and drives runs, dispatches tasks to workers over
// WorkerService streams and fires cron schedules. Followers stand by and take over.
//
// Every setting is a flag with a CAIRN_* environment variable; `cairn-scheduler --help` lists
// them. Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on a runtime failure, 2 on a
// configuration error. See docs/scheduler-ops.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-io/cairn/services/scheduler/internal/app"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := app.ParseFlags(os.Args[1:], nil, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairn-scheduler: %v\n", err)
		return 2
	}
	cfg.SetGlobalTelemetry = true
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cairn-scheduler: %v\n", err)
		if errors.Is(err, app.ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}
