package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-io/cairn/pkg/etcdlocal"
	"github.com/cairn-io/cairn/pkg/pglocal"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// Binaries are the paths of the built executables.
type Binaries struct {
	Scheduler string
	Worker    string
	Gateway   string
	// ProfScheduler is the scheduler wrapped to write a CPU profile (built only on request).
	ProfScheduler string
}

// EnvConfig shapes the shared environment.
type EnvConfig struct {
	// Dir holds everything (binaries, PostgreSQL, etcd, logs). It must be under a directory
	// the postgres user can traverse when we run as root.
	Dir string
	// BuildProfiler also builds the profiling scheduler wrapper.
	BuildProfiler bool
	// Progress receives one line per step (may be io.Discard).
	Progress io.Writer
	// PGStatements loads pg_stat_statements into PostgreSQL (statement profiles).
	PGStatements bool
}

// Env is what every workload shares: the binaries, one PostgreSQL, one etcd.
type Env struct {
	Dir  string
	Bins Binaries
	PG   *pglocal.Server
	Etcd *etcdlocal.Server
	// EtcdClient is the benchmark's own client.
	EtcdClient *clientv3.Client
	// Admin is a pool on the "postgres" database (CREATE DATABASE, pgbench set-up).
	Admin *pgxpool.Pool
	// TLS is the CA every cluster's processes get their certificates from: internal traffic
	// is mutual TLS, as in production (the gateway's public API stays plaintext on loopback).
	TLS *tlsconf.Dir

	progress io.Writer
	mu       sync.Mutex
	seq      int
	ports    map[string]bool
}

// NewEnv builds the binaries and starts PostgreSQL (fsync on) and etcd (fsync on).
func NewEnv(ctx context.Context, cfg EnvConfig) (_ *Env, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("cluster: EnvConfig.Dir is required")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	e := &Env{Dir: cfg.Dir, progress: cfg.Progress, ports: map[string]bool{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o755); err != nil { // the postgres user must enter it
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if e.TLS, err = tlsconf.CreateDir(filepath.Join(cfg.Dir, "tls"), tlsconf.CAOptions{CommonName: "Cairn bench CA"}); err != nil {
		return nil, fmt.Errorf("cluster: CA: %w", err)
	}
	began := time.Now()
	if e.Bins, err = build(ctx, filepath.Join(cfg.Dir, "bin"), cfg.BuildProfiler); err != nil {
		return nil, err
	}
	e.logf("built the binaries in %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	if e.PG, err = pglocal.Start(ctx, pglocal.Config{Dir: filepath.Join(cfg.Dir, "pg"), Fsync: true, Settings: pgSettings(cfg)}); err != nil {
		return nil, fmt.Errorf("cluster: start PostgreSQL: %w", err)
	}
	if e.Admin, err = pgxpool.New(ctx, e.PG.URL("postgres")); err != nil {
		return nil, fmt.Errorf("cluster: admin pool: %w", err)
	}
	e.logf("PostgreSQL (fsync on) ready in %v", time.Since(began).Round(time.Millisecond))

	if e.Etcd, err = etcdlocal.Start(etcdlocal.Config{Dir: filepath.Join(cfg.Dir, "etcd"), LogFile: filepath.Join(cfg.Dir, "etcd.log")}); err != nil {
		return nil, fmt.Errorf("cluster: start etcd: %w", err)
	}
	if e.EtcdClient, err = clientv3.New(clientv3.Config{Endpoints: e.Etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	return e, nil
}

// Close stops etcd and PostgreSQL. Clusters must be closed first.
func (e *Env) Close() {
	if e.EtcdClient != nil {
		_ = e.EtcdClient.Close()
	}
	if e.Etcd != nil {
		e.Etcd.Close()
	}
	if e.Admin != nil {
		e.Admin.Close()
	}
	if e.PG != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.PG.Stop(ctx); err != nil {
			e.logf("stop PostgreSQL: %v", err)
		}
	}
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "# "+format+"\n", args...)
}

// freeAddr returns a free 127.0.0.1 port never handed out before by this Env.
func (e *Env) freeAddr() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("cluster: free port: %w", err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		if !e.ports[addr] {
			e.ports[addr] = true
			return addr, nil
		}
	}
	return "", errors.New("cluster: no fresh free port after 100 tries")
}

func (e *Env) next() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return e.seq
}

// packages maps each binary to its main package.
var packages = []struct{ name, pkg string }{
	{"cairn-scheduler", "github.com/cairn-io/cairn/services/scheduler"},
	{"cairn-worker", "github.com/cairn-io/cairn/services/worker"},
	{"cairn-gateway", "github.com/cairn-io/cairn/services/gateway"},
}

const profPackage = "github.com/cairn-io/cairn/bench/internal/profsched"

// build compiles the binaries into dir, without the race detector.
func build(ctx context.Context, dir string, profiler bool) (Binaries, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("cluster: %w", err)
	}
	list := packages
	if profiler {
		list = append(list[:len(list):len(list)], struct{ name, pkg string }{"cairn-scheduler-prof", profPackage})
	}
	for _, p := range list {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, p.name), p.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("cluster: build %s (%s): %w\n%s", p.name, p.pkg, err, b)
		}
	}
	b := Binaries{
		Scheduler: filepath.Join(dir, "cairn-scheduler"),
		Worker:    filepath.Join(dir, "cairn-worker"),
		Gateway:   filepath.Join(dir, "cairn-gateway"),
	}
	if profiler {
		b.ProfScheduler = filepath.Join(dir, "cairn-scheduler-prof")
	}
	return b, nil
}

func pgSettings(cfg EnvConfig) map[string]string {
	if !cfg.PGStatements {
		return nil
	}
	return map[string]string{"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}
}
