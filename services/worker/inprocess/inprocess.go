// Package inprocess runs a worker inside another process, for `cairnctl dev`; deployments
// run the cairn-worker binary. It re-exports the worker so the CLI can import it (the
// implementation lives under internal/).
package inprocess

import (
	"context"
	"io"

	"github.com/cairn-io/cairn/services/worker/internal/worker"
)

// Config is the worker's configuration (see cairn-worker --help).
type Config = worker.Config

// Run runs a worker until ctx ends, then drains it.
func Run(ctx context.Context, cfg Config) error { return worker.Run(ctx, cfg) }

// ParseFlags builds a Config from cairn-worker's flags (defaults for everything not given),
// ignoring the environment.
func ParseFlags(args []string) (Config, error) {
	return worker.ParseFlags(args, func(string) (string, bool) { return "", false }, io.Discard)
}
