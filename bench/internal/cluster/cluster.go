package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/proc"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// Spec is the shape of one cluster.
type Spec struct {
	Schedulers int           // at least 1
	Workers    int           // may be 0 (tasks then wait in the leader's queues)
	Slots      int           // slots per worker (--concurrency)
	SessionTTL time.Duration // schedulers' --session-ttl
	LeaseTTL   time.Duration // workers' --lease-ttl
	AdoptGrace time.Duration // schedulers' --adopt-grace
	// CPUProfile, when set, runs scheduler-0 as the profiling wrapper writing a CPU profile
	// to this path when it is stopped (Env must have been built with BuildProfiler).
	CPUProfile string
}

// Cluster is one running set of processes over a fresh database and etcd prefix.
type Cluster struct {
	Name        string
	Prefix      string // etcd key prefix
	DatabaseURL string
	// Pool reads the cluster's database for timings and checks.
	Pool       *pgxpool.Pool
	Store      *store.Store
	Schedulers []*Process
	Workers    []*Process
	Gateway    *Process
	// Conn is a gRPC connection to the gateway.
	Conn *grpc.ClientConn

	env  *Env
	spec Spec
	all  []*Process
	n    int // the cluster's number, in certificate file names
}

// SchedulerServerName is the name in every scheduler certificate, verified by its clients.
const SchedulerServerName = "cairn-scheduler"

// tlsArgs issues the certificate of role/name and returns the flags that use it.
func (c *Cluster) tlsArgs(role tlsconf.Role, name string) ([]string, error) {
	req := tlsconf.CertRequest{Identity: tlsconf.Identity{Role: role, Name: name}}
	if role == tlsconf.RoleScheduler {
		req.DNSNames = []string{SchedulerServerName}
	}
	cert, key, err := c.env.TLS.Issue(fmt.Sprintf("%02d-%s-%s", c.n, role, name), req)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: certificate of %s %s: %w", c.Name, role, name, err)
	}
	ca := c.env.TLS.CAFile()
	if role == tlsconf.RoleScheduler {
		return []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca, "--scheduler-server-name", SchedulerServerName}, nil
	}
	return []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--scheduler-server-name", SchedulerServerName}, nil
}

// NewCluster creates database and prefix for name and starts the schedulers (waiting for a
// leader in office), the workers (waiting for their registrations) and the gateway (waiting
// for /readyz).
func (e *Env) NewCluster(ctx context.Context, name string, spec Spec) (_ *Cluster, err error) {
	if spec.Schedulers < 1 {
		return nil, fmt.Errorf("cluster %s: need at least one scheduler, got %d", name, spec.Schedulers)
	}
	if spec.Workers > 0 && spec.Slots < 1 {
		return nil, fmt.Errorf("cluster %s: slots per worker must be at least 1, got %d", name, spec.Slots)
	}
	n := e.next()
	c := &Cluster{Name: name, Prefix: fmt.Sprintf("/bench-%d/", n), env: e, spec: spec, n: n}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	began := time.Now()
	db := fmt.Sprintf("bench_%d", n)
	if _, err := e.Admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return nil, fmt.Errorf("cluster %s: create database %s: %w", name, db, err)
	}
	c.DatabaseURL = e.PG.URL(db)
	if c.Pool, err = pgxpool.New(ctx, c.DatabaseURL); err != nil {
		return nil, fmt.Errorf("cluster %s: pool: %w", name, err)
	}
	c.Store = store.New(c.Pool)
	logDir := filepath.Join(e.Dir, "logs", fmt.Sprintf("%02d-%s", n, name))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}

	for i := range spec.Schedulers {
		grpcAddr, err := e.freeAddr()
		if err != nil {
			return nil, err
		}
		opsAddr, err := e.freeAddr()
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("scheduler-%d", i)
		bin, env := e.Bins.Scheduler, map[string]string{}
		if i == 0 && spec.CPUProfile != "" {
			if e.Bins.ProfScheduler == "" {
				return nil, fmt.Errorf("cluster %s: a CPU profile needs the profiling scheduler built", name)
			}
			bin, env["CAIRN_BENCH_CPUPROFILE"] = e.Bins.ProfScheduler, spec.CPUProfile
		}
		tlsArgs, err := c.tlsArgs(tlsconf.RoleScheduler, id)
		if err != nil {
			return nil, err
		}
		args := c.withDB(append([]string{"--id", id, "--grpc-addr", grpcAddr, "--ops-addr", opsAddr}, tlsArgs...)...)
		if spec.SessionTTL > 0 {
			args = append(args, "--session-ttl", spec.SessionTTL.String())
		}
		if spec.AdoptGrace > 0 {
			args = append(args, "--adopt-grace", spec.AdoptGrace.String())
		}
		p := c.process(id, bin, args, env, logDir)
		p.ID, p.GRPCAddr, p.OpsAddr = id, grpcAddr, opsAddr
		c.Schedulers = append(c.Schedulers, p)
		if err := p.Start(); err != nil {
			return nil, err
		}
	}
	if _, _, err := c.WaitLeader(ctx, 60*time.Second, 0); err != nil {
		return nil, err
	}

	for i := range spec.Workers {
		if _, err := c.AddWorker(ctx, logDir, i); err != nil {
			return nil, err
		}
	}

	grpcAddr, err := e.freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := e.freeAddr()
	if err != nil {
		return nil, err
	}
	opsAddr, err := e.freeAddr()
	if err != nil {
		return nil, err
	}
	gwTLS, err := c.tlsArgs(tlsconf.RoleGateway, "gateway")
	if err != nil {
		return nil, err
	}
	gw := c.process("gateway", e.Bins.Gateway, c.withDB(append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--ops-addr", opsAddr}, gwTLS...)...),
		map[string]string{"CAIRN_BOOTSTRAP_TOKEN": AdminToken}, logDir)
	gw.ID, gw.GRPCAddr, gw.HTTPAddr, gw.OpsAddr = "gateway", grpcAddr, httpAddr, opsAddr
	c.Gateway = gw
	if err := gw.Start(); err != nil {
		return nil, err
	}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		if !gw.Running() {
			return false, fmt.Errorf("gateway exited during start-up:\n%s", gw.LogTail(20))
		}
		return httpOK("http://" + opsAddr + "/readyz"), nil
	}); err != nil {
		return nil, fmt.Errorf("cluster %s: gateway /readyz: %w", name, err)
	}
	if c.Conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: AdminToken, Insecure: true})); err != nil {
		return nil, fmt.Errorf("cluster %s: dial gateway: %w", name, err)
	}
	e.logf("cluster %s: %d scheduler(s), %d worker(s) x %d slots, gateway ready in %v (logs in %s)",
		name, spec.Schedulers, spec.Workers, spec.Slots, time.Since(began).Round(time.Millisecond), logDir)
	return c, nil
}

// common returns the flags every Cairn binary takes, then extra.
func (c *Cluster) common(extra ...string) []string {
	return append([]string{
		"--etcd-endpoints", strings.Join(c.env.Etcd.Endpoints(), ","),
		"--etcd-prefix", c.Prefix,
		"--log-format", "text",
		"--log-level", "warn",
	}, extra...)
}

// withDB is common plus the database URL (schedulers and gateway; workers never see it).
func (c *Cluster) withDB(extra ...string) []string {
	return c.common(append([]string{"--database-url", c.DatabaseURL}, extra...)...)
}

func (c *Cluster) process(name, bin string, args []string, extra map[string]string, logDir string) *Process {
	// Inherit the basics but never a CAIRN_* setting of the caller's shell.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	p := &Process{Process: proc.New(name, bin, args, env, filepath.Join(logDir, name+".log"))}
	c.all = append(c.all, p)
	return p
}

// AdminToken is the bootstrap admin token of every gateway the benchmark starts; the
// workloads call with it.
var AdminToken = apitoken.NewSecret()

// AddWorker starts worker i and waits for its registration in etcd.
func (c *Cluster) AddWorker(ctx context.Context, logDir string, i int) (*Process, error) {
	id := fmt.Sprintf("worker-%d", i)
	opsAddr, err := c.env.freeAddr()
	if err != nil {
		return nil, err
	}
	tlsArgs, err := c.tlsArgs(tlsconf.RoleWorker, id)
	if err != nil {
		return nil, err
	}
	args := c.common(append([]string{"--id", id, "--concurrency", strconv.Itoa(c.spec.Slots), "--ops-addr", opsAddr}, tlsArgs...)...)
	if os.Geteuid() == 0 {
		// A worker refuses to run tasks as root unless told: run them as nobody, as a
		// deployment would run them as an unprivileged user.
		args = append(args, "--task-user", "nobody")
	}
	if c.spec.LeaseTTL > 0 {
		args = append(args, "--lease-ttl", c.spec.LeaseTTL.String())
	}
	p := c.process(id, c.env.Bins.Worker, args, nil, logDir)
	p.ID, p.OpsAddr = id, opsAddr
	c.Workers = append(c.Workers, p)
	if err := p.Start(); err != nil {
		return nil, err
	}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("%s exited during start-up:\n%s", id, p.LogTail(20))
		}
		return c.workerRegistered(ctx, id), nil
	}); err != nil {
		return nil, fmt.Errorf("cluster %s: worker %s registration: %w", c.Name, id, err)
	}
	return p, nil
}

func (c *Cluster) workerRegistered(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.env.EtcdClient.Get(ctx, membership.WorkersPrefix(c.Prefix)+id)
	return err == nil && len(resp.Kvs) == 1
}

// WaitLeader waits until etcd names one of our schedulers as leader with an epoch above
// after that is also the epoch stored in PostgreSQL (it has taken office), and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration, after int64) (*Process, int64, error) {
	var leader *Process
	var epoch int64
	err := poll(ctx, timeout, func() (bool, error) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		l, err := election.Leader(lctx, c.env.EtcdClient, c.Prefix)
		if err != nil || l.Epoch <= after {
			return false, nil
		}
		for _, s := range c.Schedulers {
			if s.GRPCAddr == l.Value && s.Running() {
				stored, err := c.Store.GetLeadership(lctx)
				if err != nil || stored.Epoch != l.Epoch {
					return false, nil
				}
				leader, epoch = s, l.Epoch
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		var tails []string
		for _, s := range c.Schedulers {
			tails = append(tails, fmt.Sprintf("---- %s ----\n%s", s.Name, s.LogTail(15)))
		}
		return nil, 0, fmt.Errorf("cluster %s: no leader in office: %w\n%s", c.Name, err, strings.Join(tails, "\n"))
	}
	return leader, epoch, nil
}

// Close ends every process (the profiling scheduler gracefully, so that it writes its
// profile) and closes the clients.
func (c *Cluster) Close() {
	if c.Conn != nil {
		_ = c.Conn.Close()
	}
	for _, p := range c.all {
		var grace time.Duration
		if c.spec.CPUProfile != "" && p == c.Schedulers[0] {
			grace = 30 * time.Second
		}
		p.End(grace)
	}
	if c.Pool != nil {
		c.Pool.Close()
	}
}

// ErrTimeout is returned by poll when the condition did not hold in time.
var ErrTimeout = errors.New("timed out")

// poll calls cond every 50ms until it returns true or an error, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", ErrTimeout, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Poll is poll for the workloads.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	return poll(ctx, timeout, cond)
}

func httpOK(url string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogDir is where the processes of this cluster log.
func (c *Cluster) LogDir() string { return filepath.Dir(c.Schedulers[0].LogPath) }
