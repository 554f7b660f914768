// Package inprocess runs a scheduler replica inside another process. It exists for
// `cairnctl dev`, which runs all of Cairn in one process; deployments run the cairn-scheduler
// binary. It re-exports the scheduler's application so the CLI can import it (the
// implementation lives under internal/).
package inprocess

import (
	"context"
	"io"

	"github.com/cairn-io/cairn/services/scheduler/internal/app"
)

// Config is the scheduler's configuration (see cairn-scheduler --help).
type Config = app.Config

// Scheduler is a started replica.
type Scheduler = app.App

// Start starts a replica: it connects, migrates, serves gRPC and campaigns for leadership.
// Stop it with Stop.
func Start(ctx context.Context, cfg Config) (*Scheduler, error) { return app.Start(ctx, cfg) }

// ParseFlags builds a Config from cairn-scheduler's flags (defaults for everything not given),
// ignoring the environment.
func ParseFlags(args []string) (Config, error) {
	return app.ParseFlags(args, func(string) (string, bool) { return "", false }, io.Discard)
}
