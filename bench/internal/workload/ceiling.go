package workload

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

const pgbenchScript = "\\set aid random(1, 100000 * :scale)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"

var tpsRE = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// ceiling runs pgbench against the benchmark's PostgreSQL: the commit rate every throughput
// figure can be read against. A missing pgbench is reported, never fatal.
func (r *runner) ceiling(ctx context.Context) error {
	secs := max(1, int(r.cfg.PgbenchDuration.Round(time.Second)/time.Second))
	r.rep.Workload("ceiling", "tool", "pgbench", "script", "single-row UPDATE of pgbench_accounts by primary key",
		"scale", 1, "clients", joinInts(r.cfg.PgbenchClients), "duration", fmt.Sprintf("%ds", secs), "fsync", "on")
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		bin = filepath.Join(r.env.PG.BinDir(), "pgbench")
		if _, serr := os.Stat(bin); serr != nil {
			r.rep.Unavailable("pgbench", "pgbench not found on PATH or beside the server binaries")
			return nil
		}
	}
	if _, err := r.env.Admin.Exec(ctx, "CREATE DATABASE pgbench"); err != nil {
		return fmt.Errorf("create database pgbench: %w", err)
	}
	script := filepath.Join(r.env.Dir, "pgbench-update.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o644); err != nil {
		return fmt.Errorf("pgbench script: %w", err)
	}
	sock := filepath.Join(r.env.Dir, "pg", "sock") // pglocal's socket directory
	base := []string{"-h", sock, "-U", "postgres"}
	if out, err := r.runAsPostgres(ctx, bin, append(base, "-i", "-q", "-s", "1", "pgbench")...); err != nil {
		r.rep.Unavailable("pgbench", fmt.Sprintf("pgbench -i failed: %v: %s", err, lastLine(out)))
		return nil
	}
	for _, c := range r.cfg.PgbenchClients {
		args := append(base, "-n", "-f", script, "-c", strconv.Itoa(c), "-j", strconv.Itoa(min(c, 4)), "-T", strconv.Itoa(secs), "pgbench")
		out, err := r.runAsPostgres(ctx, bin, args...)
		m := tpsRE.FindStringSubmatch(out)
		name := fmt.Sprintf("pgbench.c%d", c)
		if err != nil || m == nil {
			r.rep.Unavailable(name, fmt.Sprintf("pgbench failed: %v: %s", err, lastLine(out)))
			continue
		}
		tps, _ := strconv.ParseFloat(m[1], 64)
		r.pgbench[c] = tps
		r.rep.AddNote(name, tps, "tps", "commits/s of a single-row UPDATE")
	}
	return nil
}

// runAsPostgres runs bin as the postgres user when we are root (like the server itself).
func (r *runner) runAsPostgres(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("look up the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = "/"
	}
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func lastLine(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
