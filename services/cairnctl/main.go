// Command cairnctl is Cairn's command-line client: it validates and draws workflow files,
// runs a workflow locally without a cluster, and (against a gateway) manages workflows, runs,
// dead letters and workers. `cairnctl help` lists the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-io/cairn/services/cairnctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
