// Command bench is Cairn's end-to-end benchmark (`make bench`, issue #6). It starts a real
// cluster on loopback — PostgreSQL with fsync on, an embedded etcd, the scheduler, workers and
// the gateway as processes — drives it through the public API, and prints each figure as a
// `name=value unit` line, then all of them as a table. Settings are printed as `# ` lines.
//
//	go run ./bench                  # every workload at full size (about 5 minutes)
//	go run ./bench --quick          # small sizes, a smoke run
//	go run ./bench --only hop,submit --chain 500
//
// Exit status: 0 when every workload ran and every run ended as expected, 1 otherwise (the
// figures are printed either way), 2 on a bad flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/cairn-io/cairn/bench/internal/workload"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, dir, keep, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		// Under the system temp directory: the postgres user must be able to traverse it.
		if dir, err = os.MkdirTemp("", "cairn-bench-"); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	if err := workload.Run(ctx, cfg, dir, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		if keep {
			fmt.Fprintf(stderr, "bench: logs kept in %s\n", dir)
		}
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (cfg workload.Config, dir string, keep bool, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := false
	for _, a := range args { // --quick changes the defaults, wherever it is given
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			quick = true
		}
	}
	cfg = workload.Default()
	if quick {
		cfg = workload.Quick()
	}
	fs.Bool("quick", false, "small sizes of every workload (a smoke run of about a minute)")
	only := fs.String("only", "", "comma-separated workloads to run (default all): "+strings.Join(workload.Names, ","))
	fs.IntVar(&cfg.Wide, "wide", cfg.Wide, "tasks of the wide run (throughput)")
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "concurrent runs (throughput)")
	fs.IntVar(&cfg.RunTasks, "run-tasks", cfg.RunTasks, "tasks per concurrent run (throughput)")
	workers := fs.String("workers", joinInts(cfg.Workers), "worker process counts, comma-separated (throughput)")
	fs.IntVar(&cfg.Slots, "slots", cfg.Slots, "slots per worker (hop, submit, recovery)")
	tslots := fs.String("throughput-slots", joinInts(cfg.ThroughputSlots), "slots per worker of the throughput cases, comma-separated (one case each)")
	fs.IntVar(&cfg.Chain, "chain", cfg.Chain, "tasks of the hop-latency chain")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients starting runs (submit, throughput)")
	fs.DurationVar(&cfg.SubmitDuration, "submit-duration", cfg.SubmitDuration, "how long each protocol is driven (submit)")
	sizes := fs.String("validate-sizes", joinInts(cfg.Sizes), "task counts for parse+validate+sort, comma-separated")
	fs.IntVar(&cfg.Pending, "pending", cfg.Pending, "queued tasks the leader holds with no worker (pending)")
	fs.IntVar(&cfg.PendingRun, "pending-run", cfg.PendingRun, "tasks per run in the pending workload (at most 10000)")
	fs.DurationVar(&cfg.PgbenchDuration, "duration", cfg.PgbenchDuration, "pgbench duration per client count (ceiling)")
	pgc := fs.String("pgbench-clients", joinInts(cfg.PgbenchClients), "pgbench client counts, comma-separated")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "schedulers' election session TTL")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "workers' etcd lease TTL (whole seconds)")
	fs.DurationVar(&cfg.AdoptGrace, "adopt-grace", cfg.AdoptGrace, "schedulers' adopt grace after a failover")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on each wait of a workload for its runs")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the leader during the first wide throughput case to this file")
	fs.IntVar(&cfg.PGTop, "pg-top", 0, "load pg_stat_statements and print, per throughput case, the N statements PostgreSQL spent most time executing (0: off)")
	fs.StringVar(&dir, "dir", "", "directory for PostgreSQL, etcd, binaries and logs (default: a fresh temporary directory, removed at the end)")
	fs.BoolVar(&keep, "keep", false, "keep the temporary directory (logs) after the run")
	if err := fs.Parse(args); err != nil {
		return cfg, "", false, err
	}
	if fs.NArg() > 0 {
		return cfg, "", false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	for _, l := range []struct {
		name string
		s    string
		dst  *[]int
	}{{"workers", *workers, &cfg.Workers}, {"throughput-slots", *tslots, &cfg.ThroughputSlots}, {"validate-sizes", *sizes, &cfg.Sizes}, {"pgbench-clients", *pgc, &cfg.PgbenchClients}} {
		if *l.dst, err = parseInts(l.s); err != nil {
			return cfg, "", false, fmt.Errorf("--%s: %w", l.name, err)
		}
	}
	if cfg.CPUProfile != "" && !strings.HasPrefix(cfg.CPUProfile, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return cfg, "", false, err
		}
		cfg.CPUProfile = wd + "/" + cfg.CPUProfile
	}
	return cfg, dir, keep, cfg.Validate()
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
