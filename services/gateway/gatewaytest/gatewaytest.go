package gatewaytest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/telemetry"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/gateway/internal/gateway"
)

// quiet drops the logs of the gateway and the stand-in leader: failures show in assertions.
var quiet = slog.New(slog.DiscardHandler)

// AdminToken is the bootstrap token of every gateway Start runs: an admin token for every
// namespace. It is stored in each test's own database, so one constant serves them all.
var AdminToken = apitoken.NewSecret()

// Options adjust Start.
type Options struct {
	// NoLeader starts without the stand-in leader (StartLeader starts it later).
	NoLeader bool
	// MaxBodyBytes, MaxPageSize and ForwardTimeout are passed to the gateway (0: its defaults;
	// ForwardTimeout defaults to 3s here).
	MaxBodyBytes   int
	MaxPageSize    int
	ForwardTimeout time.Duration
	// TokenCacheTTL is passed to the gateway (0: its default).
	TokenCacheTTL time.Duration
	// Insecure starts the gateway with authentication off.
	Insecure bool
	// PublicTLS makes the gateway's public gRPC and REST listeners serve TLS (a certificate
	// for 127.0.0.1 and localhost from the test's CA, Cluster.CAFile). Without it they are
	// plaintext; the gateway → leader link is mutual TLS either way.
	PublicTLS bool
}

// Cluster is a running gateway with its PostgreSQL, etcd and stand-in leader.
type Cluster struct {
	// Store reads and writes the gateway's database.
	Store *store.Store
	// Etcd is a client of the embedded etcd.
	Etcd *clientv3.Client
	// GRPCAddr is the gateway's gRPC address; HTTPURL its REST base URL (http://host:port).
	GRPCAddr, HTTPURL string
	// Gateway is the running gateway.
	Gateway *gateway.Gateway
	// TLS is the test's CA and certificates: the stand-in leader's server certificate
	// (cairn-scheduler), the gateway's client certificate and, with PublicTLS, its public one.
	TLS *tlsconf.Dir
	// CAFile is TLS's CA certificate.
	CAFile string

	t         testing.TB
	publicTLS bool
	leader    *leader
	elector   *election.Elector
	grpcSrv   *grpc.Server
	addr      string // the stand-in leader's address
}

// Start starts everything; it is stopped when t ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("gatewaytest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	etcd := etcdtest.Start(t)
	c := &Cluster{Store: store.New(pool), Etcd: etcd.Client(t), t: t}
	pki := newPKI(t)
	c.TLS, c.CAFile = pki.dir, pki.dir.CAFile()

	// The stand-in leader's gRPC server runs for the whole test; the election decides whether
	// it answers. It serves mutual TLS like a scheduler: only the gateway's certificate gets in.
	c.leader = &leader{st: c.Store}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gatewaytest: leader listener: %v", err)
	}
	c.addr = ln.Addr().String()
	c.grpcSrv = grpc.NewServer(grpc.Creds(pki.leaderCreds(t)), grpc.ChainUnaryInterceptor(onlyGateways))
	cairnv1.RegisterSchedulerServiceServer(c.grpcSrv, c.leader)
	go func() { _ = c.grpcSrv.Serve(ln) }()
	t.Cleanup(c.grpcSrv.Stop)

	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "cairn-gateway-test"})
	if err != nil {
		t.Fatalf("gatewaytest: telemetry: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	ft := opts.ForwardTimeout
	if ft == 0 {
		ft = 3 * time.Second
	}
	cfg := gateway.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DatabaseURL: dbURL, EtcdEndpoints: etcd.Endpoints(),
		TLSCert: pki.gatewayCert, TLSKey: pki.gatewayKey, TLSCA: c.CAFile,
		MaxBodyBytes: opts.MaxBodyBytes, MaxPageSize: opts.MaxPageSize, ForwardTimeout: ft,
		WatchInterval: 20 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Telemetry: tel, Logger: quiet,
		BootstrapToken: AdminToken, TokenCacheTTL: opts.TokenCacheTTL, Insecure: opts.Insecure,
	}
	if opts.PublicTLS {
		cfg.PublicTLSCert, cfg.PublicTLSKey = pki.gatewayCert, pki.gatewayKey
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatalf("gatewaytest: start gateway: %v", err)
	}
	t.Cleanup(g.Stop)
	c.Gateway = g
	c.GRPCAddr = g.GRPCAddr().String()
	c.HTTPURL = "http://" + g.HTTPAddr().String()
	if opts.PublicTLS {
		c.HTTPURL = "https://" + g.HTTPAddr().String()
		c.publicTLS = true
	}
	if !opts.NoLeader {
		c.StartLeader()
	}
	return c
}

// StartLeader starts the stand-in leader's campaign and waits until the gateway is ready
// (it knows and reaches the leader).
func (c *Cluster) StartLeader() {
	t := c.t
	t.Helper()
	el, err := election.New(election.Config{
		Client: c.Etcd, Value: c.addr, SessionTTL: 2 * time.Second, Logger: quiet,
		OnElected: func(ctx context.Context, l election.Leadership) error {
			if _, err := c.Store.TakeLeadership(ctx, l.Epoch, "gatewaytest"); err != nil {
				return err
			}
			c.leader.epoch.Store(l.Epoch)
			<-ctx.Done()
			c.leader.epoch.Store(0)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("gatewaytest: election: %v", err)
	}
	if err := el.Start(context.Background()); err != nil {
		t.Fatalf("gatewaytest: election: %v", err)
	}
	t.Cleanup(el.Stop)
	c.elector = el
	c.waitReady(true)
}

// StopLeader stops the stand-in leader (it resigns) and waits until the gateway is not ready.
func (c *Cluster) StopLeader() {
	c.t.Helper()
	if c.elector != nil {
		c.elector.Stop()
		c.elector = nil
	}
	c.waitReady(false)
}

// SetWorkerLoads sets the workers the stand-in leader reports as attached, with their load,
// for the gateway's ListWorkers to merge into the etcd list.
func (c *Cluster) SetWorkerLoads(ws ...*cairnv1.Worker) { c.leader.workers.Store(&ws) }

// LeaderCalls is how many calls the stand-in leader has received.
func (c *Cluster) LeaderCalls() int64 { return c.leader.calls.Load() }

// Epoch is the stand-in leader's epoch (0 when it does not lead).
func (c *Cluster) Epoch() int64 { return c.leader.epoch.Load() }

func (c *Cluster) waitReady(want bool) {
	t := c.t
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.HTTPClient().Get(c.HTTPURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if (resp.StatusCode == http.StatusOK) == want && (!want || c.Epoch() != 0) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatewaytest: gateway readiness did not become %v", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Conn returns a gRPC connection to the gateway that calls with AdminToken, closed when the
// test ends.
func (c *Cluster) Conn() *grpc.ClientConn {
	c.t.Helper()
	return c.ConnAs(AdminToken)
}

// ConnAs returns a gRPC connection to the gateway that calls with the token secret (none if
// empty), closed when the test ends.
func (c *Cluster) ConnAs(secret string) *grpc.ClientConn {
	c.t.Helper()
	creds := insecure.NewCredentials()
	if c.publicTLS {
		creds = credentials.NewTLS(c.ClientTLS())
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: secret, Insecure: !c.publicTLS}))
	}
	conn, err := grpc.NewClient(c.GRPCAddr, opts...)
	if err != nil {
		c.t.Fatalf("gatewaytest: dial gateway: %v", err)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// apply applies one group under the leader's epoch and fails the test if it does not apply.
func (c *Cluster) apply(ops ...store.Op) {
	c.t.Helper()
	var b store.Batch
	b.Add(ops...)
	res, err := c.Store.Apply(context.Background(), c.Epoch(), &b)
	if err == nil {
		err = res[0]
	}
	if err != nil {
		c.t.Fatalf("gatewaytest: apply: %v", err)
	}
}

// Progress moves a PENDING run to RUNNING and records task events (state changes in the
// history only: the stand-in runs nothing), as a leader would.
func (c *Cluster) Progress(runID string, tasks map[string]model.TaskState) {
	c.t.Helper()
	id := uuid.MustParse(runID)
	c.apply(store.RunTransition{RunID: id, From: model.RunPending, To: model.RunRunning},
		store.AppendEvent{Event: model.Event{RunID: id, Kind: model.EventRunState, From: string(model.RunPending), To: string(model.RunRunning)}})
	for task, st := range tasks {
		c.apply(store.AppendEvent{Event: model.Event{RunID: id, TaskID: task, Kind: model.EventTaskState,
			From: string(model.TaskPending), To: string(st), Attempt: 1}})
	}
}

// Finish moves a RUNNING run to a terminal state with its event.
func (c *Cluster) Finish(runID string, to model.RunState, reason string) {
	c.t.Helper()
	id := uuid.MustParse(runID)
	c.apply(store.RunTransition{RunID: id, From: model.RunRunning, To: to, Error: reason},
		store.AppendEvent{Event: model.Event{RunID: id, Kind: model.EventRunState, From: string(model.RunRunning), To: string(to), Message: reason}})
}

// DeadLetter records a dead letter for a task of a run and returns its ID.
func (c *Cluster) DeadLetter(runID, taskID, workflow string, errs ...model.AttemptError) string {
	c.t.Helper()
	id := uuid.New()
	c.apply(store.InsertDeadLetter{DeadLetter: model.DeadLetter{ID: id, RunID: uuid.MustParse(runID), TaskID: taskID,
		Workflow: workflow, Errors: errs}})
	return id.String()
}
