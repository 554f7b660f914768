package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/lock"
	"github.com/cairn-io/cairn/pkg/opsserver"
	"github.com/cairn-io/cairn/pkg/schema"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/telemetry"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/scheduler/internal/authz"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
	"github.com/cairn-io/cairn/services/scheduler/internal/leadership"
	"github.com/cairn-io/cairn/services/scheduler/internal/metrics"
	"github.com/cairn-io/cairn/services/scheduler/internal/schedapi"
	"github.com/cairn-io/cairn/services/scheduler/internal/workerapi"
)

// gRPC limits.
const (
	// MaxRecvMsgSize bounds one incoming message: a worker's hello carries its unacknowledged
	// results, each with up to 64 KiB of output.
	MaxRecvMsgSize = 16 << 20
	MaxSendMsgSize = 16 << 20
	// MigrationLock is the etcd lock (under <prefix>locks/) held while migrating.
	MigrationLock = "migrations"
	// StreamTimeout is how long a worker stream may be silent and still be alive: three of
	// the heartbeats the welcome asks for. A second hello for a live stream's worker id is
	// refused (ALREADY_EXISTS); one for a silent stream replaces it.
	StreamTimeout = 3 * workerapi.DefaultHeartbeatInterval
)

// App is one running scheduler replica.
type App struct {
	cfg Config
	log *slog.Logger

	tel     *telemetry.Telemetry
	metrics *metrics.Metrics
	ops     *opsserver.Server
	pool    atomic.Pointer[pgxpool.Pool]
	etcd    atomic.Pointer[clientv3.Client]
	store   *store.Store
	cache   *engine.WorkflowCache
	state   *leadership.State

	lis       net.Listener
	grpc      *grpc.Server
	workers   *workerapi.Server
	elector   *election.Elector
	advertise string

	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	failed   chan error // a component that cannot go on (the gRPC server stopped serving)

	stopOnce sync.Once
	stopErr  error
}

// Run starts a replica and runs it until ctx ends (a signal), then shuts it down: the leader
// resigns first so a follower takes over at once, then open gRPC calls get ShutdownTimeout to
// finish. A ctx that ends during start-up is a clean exit.
func Run(ctx context.Context, cfg Config) error {
	a, err := Start(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrConfig) {
			return nil
		}
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "cause", context.Cause(ctx))
	case runErr = <-a.failed:
		a.log.Error("a component failed; shutting down", "err", runErr)
	}
	return errors.Join(runErr, a.Stop())
}

// Start connects to PostgreSQL and etcd (retrying with backoff until ctx ends), migrates the
// schema, and starts the ops server, the gRPC server and the election campaign.
func Start(ctx context.Context, cfg Config) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		if log, err = telemetry.NewLogger(cfg.LogFormat, cfg.LogLevel, os.Stderr); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	log = log.With("scheduler_id", cfg.ID)
	a := &App{cfg: cfg, log: log, failed: make(chan error, 1), state: leadership.New("")}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	a.tel, err = telemetry.Setup(ctx, telemetry.Config{Service: "cairn-scheduler", InstanceID: cfg.ID,
		OTLPEndpoint: cfg.OTLPEndpoint, SetGlobal: cfg.SetGlobalTelemetry})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if a.metrics, err = metrics.New(a.tel.Meter("github.com/cairn-io/cairn/services/scheduler")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}

	// The ops server comes first: liveness holds while the dependencies are awaited, and
	// readiness says which one is missing.
	a.ops, err = opsserver.New(opsserver.Config{Addr: cfg.OpsAddr, Metrics: a.tel.Handler(), Pprof: cfg.Pprof, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	a.addChecks()
	// Long-lived components run on a context of their own: ctx only bounds the start-up.
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.bgCancel = cancel
	if err := a.ops.Start(bgCtx); err != nil {
		return nil, fmt.Errorf("ops server on %s: %w", cfg.OpsAddr, err)
	}

	if err := a.connect(ctx); err != nil {
		return nil, err
	}
	if cfg.Migrate {
		if err := a.migrate(ctx); err != nil {
			return nil, err
		}
	}
	a.store = store.New(a.pool.Load())
	a.cache = engine.NewWorkflowCache(a.store)

	a.lis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	a.advertise = advertiseAddr(cfg.AdvertiseAddr, a.lis.Addr())
	a.state.SetSelf(a.advertise)
	if err := a.startGRPC(); err != nil {
		return nil, err
	}

	leaders, err := election.Observe(bgCtx, a.etcd.Load(), cfg.EtcdPrefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	a.bg.Add(1)
	go a.followLeaders(leaders)

	a.elector, err = election.New(election.Config{Client: a.etcd.Load(), Prefix: cfg.EtcdPrefix, Value: a.advertise,
		SessionTTL: cfg.SessionTTL, OnElected: a.lead, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := a.elector.Start(bgCtx); err != nil {
		return nil, fmt.Errorf("start election: %w", err)
	}
	if k := cfg.Keyring; k != nil {
		log.Info("secrets keyring loaded", "active_key_id", k.Active(), "key_ids", strings.Join(k.IDs(), ","))
		if cfg.KeyringFileLoose() {
			log.Warn("the secrets keyring file is readable by other users: make it mode 0600 (or 0400), owned by the scheduler's user",
				"file", cfg.SecretsKeyringFile)
		}
	} else {
		log.Warn("no secrets keyring: secrets cannot be set, and workflows that reference them are refused " +
			"(set --secrets-keyring-file or CAIRN_SECRETS_KEYRING)")
	}
	log.Info("scheduler started", "grpc", a.lis.Addr().String(), "advertise", a.advertise,
		"ops", a.ops.Addr().String(), "etcd_prefix", cfg.EtcdPrefix)
	return a, nil
}

// advertiseAddr is the configured address, or the listen address with a routable host.
func advertiseAddr(configured string, listen net.Addr) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

func (a *App) addChecks() {
	_ = a.ops.AddCheck("postgres", func(ctx context.Context) error {
		p := a.pool.Load()
		if p == nil {
			return errors.New("not connected yet")
		}
		return p.Ping(ctx)
	})
	_ = a.ops.AddCheck("etcd", func(ctx context.Context) error {
		c := a.etcd.Load()
		if c == nil {
			return errors.New("not connected yet")
		}
		_, err := c.Get(ctx, a.cfg.EtcdPrefix+"health", clientv3.WithCountOnly())
		return err
	})
	_ = a.ops.AddCheck("leader", func(context.Context) error {
		if _, ok := a.state.Observed(); !ok {
			return errors.New("no leader is elected")
		}
		return nil
	})
}

// connect reaches PostgreSQL and etcd, retrying with capped backoff (each retry logged) until
// ctx ends.
func (a *App) connect(ctx context.Context) error {
	pcfg, err := pgxpool.ParseConfig(a.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("%w: --database-url: %v", ErrConfig, err)
	}
	if !strings.Contains(a.cfg.DatabaseURL, "pool_max_conns") {
		pcfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), pcfg)
	if err != nil {
		return fmt.Errorf("%w: --database-url: %v", ErrConfig, err)
	}
	a.pool.Store(pool)
	if err := a.retry(ctx, "PostgreSQL", pool.Ping); err != nil {
		return err
	}
	client, err := etcdclient.New(a.cfg.EtcdEndpoints, a.cfg.Etcd)
	if err != nil {
		return fmt.Errorf("%w: etcd client: %v", ErrConfig, err)
	}
	a.etcd.Store(client)
	return a.retry(ctx, "etcd", func(ctx context.Context) error {
		_, err := client.Get(ctx, a.cfg.EtcdPrefix+"health", clientv3.WithCountOnly())
		return err
	})
}

func (a *App) retry(ctx context.Context, what string, f func(context.Context) error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			a.log.Info("connected", "to", what, "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("connect to %s: %w (last error: %v)", what, ctx.Err(), err)
		}
		a.log.Warn("cannot reach "+what+"; retrying", "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// migrate applies the schema under the etcd lock, so replicas starting together take turns.
func (a *App) migrate(ctx context.Context) error {
	start := time.Now()
	err := lock.With(ctx, a.etcd.Load(), MigrationLock, func(ctx context.Context, token int64) error {
		a.log.Info("migrating the database schema", "lock", "locks/"+MigrationLock, "lock_token", token)
		return schema.Up(ctx, a.cfg.DatabaseURL)
	}, lock.WithPrefix(a.cfg.EtcdPrefix))
	if err != nil {
		return fmt.Errorf("migrate the database schema: %w", err)
	}
	a.log.Info("database schema up to date", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (a *App) startGRPC() error {
	var err error
	a.workers, err = workerapi.New(workerapi.Config{State: a.state, Logger: a.log, Metrics: a.metrics,
		Secrets: secretSource{store: a.store, keyring: a.cfg.Keyring}})
	if err != nil {
		return err
	}
	sched, err := schedapi.New(schedapi.Config{State: a.state, Store: a.store, Workflows: a.cache, Keyring: a.cfg.Keyring, Logger: a.log})
	if err != nil {
		return err
	}
	creds, err := a.transportCredentials()
	if err != nil {
		return err
	}
	authorizer := authz.Authorizer{Insecure: creds == nil}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(authorizer.Unary),
		grpc.ChainStreamInterceptor(authorizer.Stream),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	a.grpc = grpc.NewServer(append(opts,
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(a.tel.TracerProvider), otelgrpc.WithMeterProvider(a.tel.MeterProvider))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
	)...)
	cairnv1.RegisterWorkerServiceServer(a.grpc, a.workers)
	cairnv1.RegisterSchedulerServiceServer(a.grpc, sched)
	lis := a.lis
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := a.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			select {
			case a.failed <- fmt.Errorf("gRPC server: %w", err):
			default:
			}
		}
	}()
	return nil
}

// transportCredentials loads the gRPC listener's mutual TLS, nil without TLS (insecure
// mode). The certificate must be a scheduler's and carry the name clients verify: a
// replica that clients would refuse fails here, at start-up, with the reason.
func (a *App) transportCredentials() (credentials.TransportCredentials, error) {
	if !a.cfg.tlsConfigured() {
		return nil, nil
	}
	cert, err := tlsconf.ReadCertFile(a.cfg.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert: %v", ErrConfig, err)
	}
	id, err := tlsconf.IdentityFromCert(cert)
	if err != nil || id.Role != tlsconf.RoleScheduler {
		return nil, fmt.Errorf("%w: --tls-cert %s must name a scheduler (URI SAN spiffe://cairn/scheduler/<name>); it names %v (%v)",
			ErrConfig, a.cfg.TLSCert, id, err)
	}
	if err := cert.VerifyHostname(a.cfg.SchedulerServerName); err != nil {
		return nil, fmt.Errorf("%w: --tls-cert %s does not carry the DNS name %q that gateways and workers verify (--scheduler-server-name): %v",
			ErrConfig, a.cfg.TLSCert, a.cfg.SchedulerServerName, err)
	}
	if err := tlsconf.CheckKeyFile(a.cfg.TLSKey); err != nil {
		a.log.Warn("key file readable by others", "err", err)
	}
	tc, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: a.cfg.TLSCert, KeyFile: a.cfg.TLSKey,
		ClientCAFile: a.cfg.TLSClientCA, MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	a.log.Info("gRPC serves mutual TLS", "identity", id.String(), "server_name", a.cfg.SchedulerServerName,
		"client_ca", a.cfg.TLSClientCA)
	return credentials.NewTLS(tc), nil
}

// followLeaders keeps the observed leader current (for UNAVAILABLE messages and readiness).
func (a *App) followLeaders(ch <-chan election.Leadership) {
	defer a.bg.Done()
	for l := range ch {
		a.state.SetObserved(l)
		if l.IsZero() {
			a.log.Warn("no leader elected")
		} else {
			a.log.Info("leader observed", "leader", l.Value, "epoch", l.Epoch, "self", l.Value == a.advertise)
		}
	}
}

// GRPCAddr is the gRPC server's listen address.
func (a *App) GRPCAddr() string { return a.lis.Addr().String() }

// AdvertiseAddr is the address published while this replica leads.
func (a *App) AdvertiseAddr() string { return a.advertise }

// OpsAddr is the ops server's listen address.
func (a *App) OpsAddr() string { return a.ops.Addr().String() }

// Leading reports whether this replica leads and serves.
func (a *App) Leading() bool { return a.state.Leading() }

// Epoch is the epoch of this replica's current term, 0 when it does not lead.
func (a *App) Epoch() int64 {
	t, err := a.state.Current()
	if err != nil {
		return 0
	}
	return t.Epoch
}

// Resign gives up leadership (if held); this replica campaigns again at the back of the line.
func (a *App) Resign(ctx context.Context) error { return a.elector.Resign(ctx) }

// Failed is sent an error when a component can no longer serve.
func (a *App) Failed() <-chan error { return a.failed }

// Stop shuts the replica down: resign (a follower takes over at once), stop the gRPC server
// gracefully within ShutdownTimeout, then the rest. Idempotent.
func (a *App) Stop() error {
	a.stopOnce.Do(func() {
		start := time.Now()
		if a.elector != nil {
			a.elector.Stop() // resigns: the leader's term ends before its key is deleted
		}
		if a.grpc != nil {
			done := make(chan struct{})
			go func() { a.grpc.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(a.cfg.ShutdownTimeout):
				a.log.Warn("gRPC calls still open after the shutdown timeout; closing them", "timeout", a.cfg.ShutdownTimeout)
				a.grpc.Stop()
				<-done
			}
			a.workers.Wait()
		}
		a.closeAll()
		a.log.Info("scheduler stopped", "took", time.Since(start).Round(time.Millisecond))
	})
	return a.stopErr
}

// closeAll releases what Start acquired (also after a failed Start).
func (a *App) closeAll() {
	if a.elector != nil {
		a.elector.Stop()
	}
	if a.grpc != nil {
		a.grpc.Stop()
	} else if a.lis != nil {
		_ = a.lis.Close()
	}
	if a.bgCancel != nil {
		a.bgCancel()
	}
	a.bg.Wait()
	if a.ops != nil {
		a.ops.Stop()
	}
	var errs []error
	if c := a.etcd.Load(); c != nil {
		if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("close etcd client: %w", err))
		}
	}
	if p := a.pool.Load(); p != nil {
		p.Close()
	}
	if a.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.tel.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry shutdown: %w", err))
		}
		cancel()
	}
	a.stopErr = errors.Join(errs...)
}
