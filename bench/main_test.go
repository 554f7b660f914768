package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-io/cairn/bench/internal/report"
)

// TestQuick runs every workload at quick sizes on a real cluster and checks that every figure
// line is printed and parseable. It never looks at a value: tests do not assert speed.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, etcd and the Cairn binaries; skipped with -short")
	}
	// Not t.TempDir: the postgres user must traverse the parent, and t.TempDir's is 0700.
	dir, err := os.MkdirTemp("", "cairn-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var out, errOut bytes.Buffer
	code := run([]string{"--quick", "--dir", dir}, &out, &errOut)
	t.Logf("figures:\n%s", out.String())
	if code != 0 {
		t.Fatalf("bench --quick exited %d:\n%s", code, errOut.String())
	}
	got := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "WORKLOAD") {
			break // the table repeats the figures
		}
		m := report.Line.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("unparseable figure line %q", line)
			continue
		}
		if _, dup := got[m[1]]; dup {
			t.Errorf("figure %s printed twice", m[1])
		}
		got[m[1]] = m[2]
		if m[2] == report.Unavailable {
			continue
		}
		if _, err := strconv.ParseFloat(m[2], 64); err != nil {
			t.Errorf("figure %s: value %q is not a number", m[1], m[2])
		}
		if m[3] == "" {
			t.Errorf("figure %s has no unit", m[1])
		}
	}
	want := []string{
		"pgbench.c1", "pgbench.c4",
		"validate.wide.100", "validate.wide.1000", "validate.chain.100", "validate.chain.1000",
		"hop.p50", "hop.p99", "hop.max", "hop.chain_total", "hop.errors",
		"submit.rest", "submit.rest.p50", "submit.rest.p99", "submit.grpc", "submit.grpc.p50", "submit.grpc.p99", "submit.errors",
		"rss.pending.leader", "pending.errors",
		"recovery.leader_kill.office", "recovery.leader_kill.dispatch", "recovery.leader_term.office",
		"recovery.leader_term.dispatch", "recovery.worker_kill.restart", "recovery.errors",
	}
	for _, shape := range []string{"wide", "runs"} {
		for _, w := range []string{"w1", "w2"} {
			k := shape + "." + w + ".s8"
			want = append(want, "throughput."+k, "throughput."+k+".errors", "throughput."+k+".commits",
				"throughput."+k+".batch_groups", "throughput."+k+".commit_ms", "rss."+k+".scheduler_peak", "rss."+k+".worker_peak")
		}
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			if strings.HasPrefix(name, "pgbench.") && got["pgbench"] == report.Unavailable {
				continue // pgbench missing on this machine: reported, never fatal
			}
			t.Errorf("figure %s not printed", name)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--wide", "0"}, "--wide must be at least 1"},
		{[]string{"--workers", "1,x"}, "--workers"},
		{[]string{"--throughput-slots", "16,0"}, "throughput-slots (each count) must be at least 1"},
		{[]string{"--only", "nope"}, `unknown workload "nope"`},
		{[]string{"--wide", "20000"}, "at most 10,000 tasks"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var errOut bytes.Buffer
		if code := run(tc.args, &bytes.Buffer{}, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: error %q does not mention %q", tc.args, errOut.String(), tc.want)
		}
	}
	cfg, _, _, err := parseFlags([]string{"--quick", "--chain", "7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chain != 7 || cfg.Wide != 200 {
		t.Errorf("--quick --chain 7: chain=%d wide=%d, want 7 and the quick wide 200", cfg.Chain, cfg.Wide)
	}
}
