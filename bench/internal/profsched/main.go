// Command profsched is cairn-scheduler with a CPU profile: the same application (through
// services/scheduler/inprocess), started from the same flags, profiled from start to SIGTERM
// into the file named by CAIRN_BENCH_CPUPROFILE. The benchmark runs it in place of the
// scheduler when asked for a profile, because the scheduler's ops server does not mount
// /debug/pprof.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cairn-io/cairn/services/scheduler/inprocess"
)

func main() { os.Exit(run()) }

func run() int {
	path := os.Getenv("CAIRN_BENCH_CPUPROFILE")
	if path == "" {
		fmt.Fprintln(os.Stderr, "profsched: CAIRN_BENCH_CPUPROFILE is required")
		return 2
	}
	cfg, err := inprocess.ParseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
		return 2
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
		return 1
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := 0
	s, err := inprocess.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
		code = 1
	} else {
		select {
		case <-ctx.Done():
		case err := <-s.Failed():
			fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
			code = 1
		}
		if err := s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "profsched: stop: %v\n", err)
			code = 1
		}
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "profsched: %v\n", err)
		code = 1
	}
	return code
}
