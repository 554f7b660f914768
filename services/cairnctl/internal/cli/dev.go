package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/cairn-io/cairn/services/cairnctl/internal/dev"
)

func cmdDev(e *env, args []string) int {
	fs := newFlags(e, "dev")
	var o dev.Options
	fs.StringVar(&o.Dir, "dir", ".cairn", "state directory: PostgreSQL data, etcd data, logs")
	fs.StringVar(&o.Examples, "examples", "examples", "directory of workflows to apply at start (empty: none)")
	fs.StringVar(&o.GRPCAddr, "grpc-addr", "127.0.0.1:7070", "public gRPC API address")
	fs.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST API address (HTTPS)")
	fs.StringVar(&o.OpsAddr, "ops-addr", "127.0.0.1:9090", "the gateway's plain-HTTP /healthz, /readyz and /metrics")
	fs.IntVar(&o.Workers, "workers", 1, "number of workers")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "slots per worker")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level of DIR/cairn.log: debug, info, warn or error")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) > 0 {
		return usageError(e, "dev", "unexpected arguments %q", pos)
	}
	if o.Workers < 1 || o.Concurrency < 1 {
		return usageError(e, "dev", "--workers and --concurrency must be at least 1 (got %d and %d)", o.Workers, o.Concurrency)
	}
	o.DatabaseURL = os.Getenv("CAIRN_DATABASE_URL")
	o.Out = e.stdout
	if err := dev.Run(e.ctx, o); err != nil {
		if errors.Is(err, dev.ErrSetup) {
			fmt.Fprintf(e.stderr, "cairnctl %v\n", err)
		} else {
			fmt.Fprintf(e.stderr, "cairnctl dev: %v\n", err)
		}
		return ExitFail
	}
	return ExitOK
}
