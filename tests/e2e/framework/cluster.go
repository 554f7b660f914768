package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdlocal"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/pglocal"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// Prefix is the etcd key prefix every process of a cluster uses.
const Prefix = "/cairn/"

// AdminToken is the bootstrap admin token of every gateway the framework starts (stored in
// each cluster's own database); clients of the gateway call with it.
var AdminToken = apitoken.NewSecret()

// Options shape a cluster. Zero values take the defaults noted.
type Options struct {
	Schedulers        int           // default 1
	Workers           int           // default 1
	WorkerConcurrency int           // slots per worker; default 2
	LeaseTTL          time.Duration // workers' etcd lease (CAIRN_LEASE_TTL); default 2s
	SessionTTL        time.Duration // schedulers' election session (CAIRN_SESSION_TTL); default 2s
	// AdoptGrace is how long a new leader waits for live workers to re-attach their attempts
	// (CAIRN_ADOPT_GRACE); default LeaseTTL, as the scheduler's help recommends.
	AdoptGrace time.Duration
	// DrainTimeout is the workers' CAIRN_DRAIN_TIMEOUT; default 15s.
	DrainTimeout time.Duration
	// Gateway starts one cairn-gateway; Apply and StartRun then go through it.
	Gateway bool
	// EtcdProxies gives each scheduler its own Proxy in front of etcd (Cluster.EtcdProxy), so
	// that a test can partition one scheduler from etcd while it keeps PostgreSQL and its
	// workers.
	EtcdProxies bool
	// Insecure runs every process with --insecure (plaintext gRPC, no client certificates)
	// instead of mutual TLS.
	Insecure bool
	// TaskUser is the workers' CAIRN_TASK_USER; default "nobody" when the tests run as root
	// (a worker refuses to run tasks as root unless told), none otherwise.
	TaskUser string
	// LogLevel of every process; default "info".
	LogLevel string
	// NoKeyring starts the schedulers without a secrets keyring; by default they share one
	// the framework generates (Cluster.KeyringFile).
	NoKeyring bool
	// Env adds or overrides variables of every process.
	Env map[string]string
}

func (o Options) withDefaults() Options {
	if o.Schedulers == 0 {
		o.Schedulers = 1
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.WorkerConcurrency == 0 {
		o.WorkerConcurrency = 2
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 2 * time.Second
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 2 * time.Second
	}
	if o.AdoptGrace == 0 {
		o.AdoptGrace = o.LeaseTTL
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 15 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.TaskUser == "" && os.Geteuid() == 0 {
		o.TaskUser = "nobody"
	}
	return o
}

// Cluster is a running Cairn cluster of real processes.
type Cluster struct {
	Opts Options
	Bins Binaries

	// PG is the private PostgreSQL; Kill/Stop/Restart it to inject store failures.
	PG *pglocal.Server
	// DatabaseURL is the URL every process uses.
	DatabaseURL string
	// Etcd is the embedded etcd server, running inside the test process.
	Etcd *etcdlocal.Server
	// EtcdClient is the test's own etcd client.
	EtcdClient *clientv3.Client
	// Pool is the test's own connection pool (reads for checks).
	Pool *pgxpool.Pool
	// Store reads state through the same code the services use.
	Store *store.Store
	// PKI is the cluster's CA and certificates (nil with Options.Insecure).
	PKI *PKI

	Schedulers []*Process
	Workers    []*Process
	Gateway    *Process // nil unless Options.Gateway
	// KeyringFile is the schedulers' secrets keyring (CAIRN_SECRETS_KEYRING_FILE, mode 0600),
	// empty with Options.NoKeyring.
	KeyringFile string

	t       testing.TB
	logDir  string
	shared  string // see SharedDir
	all     []*Process
	proxies []*Proxy // per scheduler, with Options.EtcdProxies
}

// EtcdProxy returns the proxy through which scheduler p reaches etcd (Options.EtcdProxies).
func (c *Cluster) EtcdProxy(p *Process) *Proxy {
	c.t.Helper()
	for i, s := range c.Schedulers {
		if s == p && i < len(c.proxies) {
			return c.proxies[i]
		}
	}
	c.t.Fatalf("framework: %s has no etcd proxy (set Options.EtcdProxies)", p.Name)
	return nil
}

// NewCluster starts PostgreSQL, etcd, the schedulers (waiting for a leader that has taken
// office in PostgreSQL), the workers (waiting for their registrations) and the gateway
// (waiting for /readyz). Everything is torn down when t ends.
func NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts = opts.withDefaults()
	began := time.Now()
	c := &Cluster{Opts: opts, Bins: Build(t), t: t, logDir: t.TempDir()}
	if !opts.Insecure {
		c.PKI = newPKI(t, privateDir(t, c.logDir))
	}
	c.startPostgres()
	c.startEtcd()
	// Registered after PostgreSQL's and etcd's, so it runs before them: the processes end
	// while their stores are still up.
	t.Cleanup(c.cleanup)

	if !opts.NoKeyring {
		line, err := secretbox.NewKeyLine("e2e-1")
		if err != nil {
			t.Fatalf("framework: keyring: %v", err)
		}
		c.KeyringFile = filepath.Join(c.logDir, "keyring")
		if err := os.WriteFile(c.KeyringFile, []byte(line+"\n"), 0o600); err != nil {
			t.Fatalf("framework: keyring: %v", err)
		}
	}
	for i := range opts.Schedulers {
		grpcAddr, opsAddr := freeAddr(t), freeAddr(t)
		env := map[string]string{
			"CAIRN_SCHEDULER_ID": fmt.Sprintf("scheduler-%d", i),
			"CAIRN_GRPC_ADDR":    grpcAddr,
			"CAIRN_OPS_ADDR":     opsAddr,
			"CAIRN_SESSION_TTL":  opts.SessionTTL.String(),
			"CAIRN_ADOPT_GRACE":  opts.AdoptGrace.String(),
		}
		c.schedulerEnv(env, fmt.Sprintf("scheduler-%d", i))
		if c.KeyringFile != "" {
			env["CAIRN_SECRETS_KEYRING_FILE"] = c.KeyringFile
		}
		if opts.EtcdProxies {
			px := NewProxy(t, strings.TrimPrefix(c.Etcd.Endpoints()[0], "http://"))
			env["CAIRN_ETCD_ENDPOINTS"] = "http://" + px.Addr
			c.proxies = append(c.proxies, px)
		}
		p := c.newProcess(fmt.Sprintf("scheduler-%d", i), c.Bins.Scheduler, env)
		p.ID, p.GRPCAddr, p.OpsAddr = fmt.Sprintf("scheduler-%d", i), grpcAddr, opsAddr
		c.Schedulers = append(c.Schedulers, p)
	}
	for _, p := range c.Schedulers {
		c.mustStart(p)
	}
	l := c.WaitLeader(60 * time.Second)
	t.Logf("framework: %s leads at epoch %d (%v after start)", l.Process.Name, l.Epoch, time.Since(began).Round(time.Millisecond))

	for i := range opts.Workers {
		id := fmt.Sprintf("worker-%d", i)
		opsAddr := freeAddr(t)
		env := map[string]string{
			"CAIRN_WORKER_ID":          id,
			"CAIRN_WORKER_CONCURRENCY": strconv.Itoa(opts.WorkerConcurrency),
			"CAIRN_LEASE_TTL":          opts.LeaseTTL.String(),
			"CAIRN_DRAIN_TIMEOUT":      opts.DrainTimeout.String(),
			"CAIRN_OPS_ADDR":           opsAddr,
		}
		c.clientEnv(env, tlsconf.RoleWorker, id)
		if opts.TaskUser != "" {
			env["CAIRN_TASK_USER"] = opts.TaskUser
			// The task user must reach the worker's scratch directories under TMPDIR.
			env["TMPDIR"] = c.sharedSubdir(id+".tmp", 0o711)
		}
		p := c.newProcess(id, c.Bins.Worker, env)
		p.ID, p.OpsAddr = id, opsAddr
		c.Workers = append(c.Workers, p)
		c.mustStart(p)
	}
	for _, w := range c.Workers {
		Eventually(t, 30*time.Second, func() bool {
			if !w.Running() {
				t.Fatalf("framework: %s exited during start-up:\n%s", w.Name, w.LogTail(20))
			}
			return c.WorkerRegistered(w.ID)
		}, "worker %s registered in etcd", w.ID)
	}

	if opts.Gateway {
		grpcAddr, httpAddr, opsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
		env := map[string]string{
			"CAIRN_GRPC_ADDR": grpcAddr,
			"CAIRN_HTTP_ADDR": httpAddr,
			"CAIRN_OPS_ADDR":  opsAddr,
			// From the environment, never argv (which every local user can read).
			"CAIRN_BOOTSTRAP_TOKEN": AdminToken,
		}
		c.clientEnv(env, tlsconf.RoleGateway, "gateway")
		p := c.newProcess("gateway", c.Bins.Gateway, env)
		p.ID, p.GRPCAddr, p.HTTPAddr, p.OpsAddr = "gateway", grpcAddr, httpAddr, opsAddr
		c.Gateway = p
		c.mustStart(p)
		Eventually(t, 30*time.Second, func() bool { return httpOK("http://" + opsAddr + "/readyz") },
			"gateway /readyz answers 200")
	}
	t.Logf("framework: cluster of %d schedulers, %d workers, gateway=%v ready in %v",
		opts.Schedulers, opts.Workers, opts.Gateway, time.Since(began).Round(time.Millisecond))
	return c
}

func (c *Cluster) startPostgres() {
	t := c.t
	t.Helper()
	// The server runs as the postgres user when we are root; it must be able to enter the
	// directory, which t.TempDir's 0700 parents do not allow.
	dir, err := os.MkdirTemp("", "cairn-e2e-pg-")
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("framework: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := pglocal.Start(ctx, pglocal.Config{Dir: dir, Fsync: false})
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("framework: start PostgreSQL: %v", err)
	}
	c.PG = pg
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := pg.Kill(sctx); err != nil {
			t.Logf("framework: stop PostgreSQL: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	c.DatabaseURL = pg.URL("postgres")
	pool, err := pgxpool.New(context.Background(), c.DatabaseURL)
	if err != nil {
		t.Fatalf("framework: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	c.Pool, c.Store = pool, store.New(pool)
}

func (c *Cluster) startEtcd() {
	t := c.t
	t.Helper()
	srv, err := etcdlocal.Start(etcdlocal.Config{Dir: t.TempDir(), NoFsync: true})
	if err != nil {
		t.Fatalf("framework: start etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	c.Etcd = srv
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("framework: etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	c.EtcdClient = cli
}

// newProcess prepares a process with the common environment plus extra.
func (c *Cluster) newProcess(name, bin string, extra map[string]string) *Process {
	env := map[string]string{
		"CAIRN_DATABASE_URL":   c.DatabaseURL,
		"CAIRN_ETCD_ENDPOINTS": strings.Join(c.Etcd.Endpoints(), ","),
		"CAIRN_ETCD_PREFIX":    Prefix,
		"CAIRN_LOG_FORMAT":     "text",
		"CAIRN_LOG_LEVEL":      c.Opts.LogLevel,
	}
	// A private TMPDIR: scratch directories of attempts killed with their worker stay inside
	// the test's temporary directory instead of the machine's.
	tmp := filepath.Join(c.logDir, name+".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		c.t.Fatalf("framework: %v", err)
	}
	env["TMPDIR"] = tmp
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range c.Opts.Env {
		env[k] = v
	}
	// Inherit the basics but never a CAIRN_* setting of the developer's shell.
	var list []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			list = append(list, kv)
		}
	}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	p := newProcess(c.t, name, bin, list, filepath.Join(c.logDir, name+".log"))
	c.all = append(c.all, p)
	return p
}

func (c *Cluster) mustStart(p *Process) {
	c.t.Helper()
	if err := p.Start(); err != nil {
		c.t.Fatalf("framework: %v", err)
	}
}

// cleanup ends every process we started (by PID) and dumps log tails when the test failed.
func (c *Cluster) cleanup() {
	for _, p := range c.all {
		p.End(0)
	}
	if c.t.Failed() {
		for _, p := range c.all {
			c.t.Logf("---- %s log (tail, %s) ----\n%s", p.Name, p.LogPath, p.LogTail(60))
		}
	}
}

var (
	portsMu sync.Mutex
	ports   = map[string]bool{} // every address handed out by this test binary
)

// freeAddr returns a free 127.0.0.1 port, picked by listening on :0 and closing. The kernel
// may hand the same port out again once it is closed, so an address is never returned twice.
func freeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("framework: free port: %v", err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		if !ports[addr] {
			ports[addr] = true
			return addr
		}
	}
	t.Fatalf("framework: no fresh free port after 100 tries")
	return ""
}

// Leader is the current leader as etcd sees it.
type Leader struct {
	Process *Process // nil if the address matches none of our schedulers
	Epoch   int64
	Addr    string
}

// LeaderNow reads the election from etcd; ok is false while nobody leads.
func (c *Cluster) LeaderNow() (Leader, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l, err := election.Leader(ctx, c.EtcdClient, Prefix)
	if err != nil {
		return Leader{}, false
	}
	out := Leader{Epoch: l.Epoch, Addr: l.Value}
	for _, s := range c.Schedulers {
		if s.GRPCAddr == l.Value {
			out.Process = s
		}
	}
	return out, true
}

// StoredEpoch returns the leader epoch recorded in PostgreSQL (0 before any leader).
func (c *Cluster) StoredEpoch() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l, err := c.Store.GetLeadership(ctx)
	if err != nil {
		return 0
	}
	return l.Epoch
}

// WaitLeader waits until etcd names a leader among our schedulers whose epoch is also the
// one stored in PostgreSQL (it has taken office), and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) Leader {
	c.t.Helper()
	var got Leader
	Eventually(c.t, timeout, func() bool {
		l, ok := c.LeaderNow()
		if !ok || l.Process == nil || !l.Process.Running() {
			return false
		}
		if c.StoredEpoch() != l.Epoch {
			return false
		}
		got = l
		return true
	}, "a scheduler leads and has taken office in PostgreSQL")
	return got
}

// WorkerRegistered reports whether workers/<id> exists in etcd.
func (c *Cluster) WorkerRegistered(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.EtcdClient.Get(ctx, membership.WorkersPrefix(Prefix)+id)
	return err == nil && len(resp.Kvs) == 1
}

// Worker returns the worker process with the given id.
func (c *Cluster) Worker(id string) *Process {
	c.t.Helper()
	for _, w := range c.Workers {
		if w.ID == id {
			return w
		}
	}
	c.t.Fatalf("framework: no worker %q", id)
	return nil
}

// retryable reports errors worth another try while leadership settles.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// call runs f against the gateway if there is one, else against the current leader,
// retrying UNAVAILABLE (no leader yet, leader rebuilding, failover) until timeout.
func (c *Cluster) call(what string, timeout time.Duration, f func(ctx context.Context, conn *grpc.ClientConn, viaGateway bool) error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		var conn *grpc.ClientConn
		gw := false
		if c.Gateway != nil {
			conn, gw = c.DialGateway(), true
		} else if l, ok := c.LeaderNow(); ok {
			conn = c.DialScheduler(l.Addr, tlsconf.RoleGateway, testClientName)
		}
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			last = f(ctx, conn, gw)
			cancel()
			_ = conn.Close()
			if last == nil {
				return
			}
			if !retryable(last) {
				c.t.Fatalf("framework: %s: %v", what, last)
			}
		} else {
			last = errors.New("no leader in etcd")
		}
		time.Sleep(100 * time.Millisecond) // retry pacing, not synchronisation
	}
	c.t.Fatalf("framework: %s: still failing after %v: %v", what, timeout, last)
}

// Apply stores a workflow from YAML and returns its name and version.
func (c *Cluster) Apply(yaml string) (string, int64) {
	c.t.Helper()
	var wf *cairnv1.Workflow
	c.call("apply workflow", 30*time.Second, func(ctx context.Context, conn *grpc.ClientConn, gw bool) error {
		req := &cairnv1.ApplyWorkflowRequest{Yaml: yaml}
		var resp *cairnv1.ApplyWorkflowResponse
		var err error
		if gw {
			resp, err = cairnv1.NewWorkflowServiceClient(conn).ApplyWorkflow(ctx, req)
		} else {
			resp, err = cairnv1.NewSchedulerServiceClient(conn).ApplyWorkflow(ctx, req)
		}
		if err == nil {
			wf = resp.GetWorkflow()
		}
		return err
	})
	return wf.GetName(), wf.GetVersion()
}

var runSeq int

// StartRun starts a run of workflow with params and returns its id. Every call carries a
// fresh idempotency key, so a retry after a failover cannot start a second run.
func (c *Cluster) StartRun(workflow string, params map[string]string) string {
	c.t.Helper()
	runSeq++
	key := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), runSeq)
	var id string
	c.call("start run of "+workflow, 30*time.Second, func(ctx context.Context, conn *grpc.ClientConn, gw bool) error {
		req := &cairnv1.StartRunRequest{Workflow: workflow, Params: params, IdempotencyKey: key}
		var resp *cairnv1.StartRunResponse
		var err error
		if gw {
			resp, err = cairnv1.NewRunServiceClient(conn).StartRun(ctx, req)
		} else {
			resp, err = cairnv1.NewSchedulerServiceClient(conn).StartRun(ctx, req)
		}
		if err == nil {
			id = resp.GetRun().GetRunId()
		}
		return err
	})
	if id == "" {
		c.t.Fatalf("framework: start run of %s: empty run id", workflow)
	}
	return id
}
