package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/lifecycle"
	"github.com/cairn-io/cairn/pkg/loopback"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/opsserver"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/telemetry"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/gateway/internal/api"
	"github.com/cairn-io/cairn/services/gateway/internal/auth"
	"github.com/cairn-io/cairn/services/gateway/internal/forward"
)

// Defaults of Config.
const (
	DefaultGRPCAddr        = "127.0.0.1:7070"
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultOpsAddr         = "127.0.0.1:9090"
	DefaultMaxBodyBytes    = 4 << 20
	DefaultShutdownTimeout = 10 * time.Second
	// maxResponseBytes caps gRPC responses (a page of attempts with their output can be
	// large; requests are capped by MaxBodyBytes).
	maxResponseBytes = 64 << 20
)

// ErrInvalidConfig is matched by every configuration error.
var ErrInvalidConfig = errors.New("gateway: invalid configuration")

// Config configures a Gateway.
type Config struct {
	GRPCAddr string // public gRPC API
	HTTPAddr string // REST, /openapi.json, /healthz, /readyz, /metrics
	OpsAddr  string // /healthz, /readyz, /metrics only; empty: no separate ops listener

	DatabaseURL   string   // required
	EtcdEndpoints []string // required
	Etcd          etcdclient.Security
	EtcdPrefix    string // empty: /cairn/

	// TLSCert and TLSKey are the gateway's client certificate towards the scheduler leader
	// (spiffe://cairn/gateway/<name>); TLSCA is the CA the leader's certificate must chain
	// to. All three, or Insecure (which then also dials the leader in plaintext).
	TLSCert, TLSKey, TLSCA string
	// SchedulerServerName is the name the leader's certificate must carry, whatever address
	// etcd names; empty: DefaultSchedulerServerName.
	SchedulerServerName string
	// PublicTLSCert and PublicTLSKey, when set, make the public gRPC and REST listeners serve
	// TLS with this certificate (the ops listener stays plain HTTP).
	PublicTLSCert, PublicTLSKey string
	// PublicPlaintext allows public listeners off loopback without PublicTLSCert: for a
	// gateway behind a proxy or service mesh that terminates TLS. Without it (and without a
	// certificate) such a listener is a configuration error.
	PublicPlaintext bool

	MaxBodyBytes    int           // REST bodies and gRPC request messages; 0: DefaultMaxBodyBytes
	MaxPageSize     int           // 0: the store's cap
	ForwardTimeout  time.Duration // 0: forward.DefaultTimeout
	WatchInterval   time.Duration // 0: api.DefaultWatchInterval
	ShutdownTimeout time.Duration // 0: DefaultShutdownTimeout

	// Insecure turns authentication off (every caller is an admin named "insecure") and,
	// without TLSCert, lets the gateway dial the leader in plaintext. It is accepted only when
	// every listener is on loopback, and the REST listener then accepts only loopback Host
	// headers (DNS rebinding).
	Insecure bool
	// BootstrapToken, when set, is a token secret (apitoken format) stored at start-up as an
	// admin token named "bootstrap" for every namespace, unless a token with that secret
	// exists already (a revoked one stays revoked).
	BootstrapToken string
	// AllowedOrigins are origins (scheme://host[:port]) besides the gateway's own that
	// browsers may send API requests from; empty: none.
	AllowedOrigins []string
	// TokenCacheTTL bounds how long a revoked token may still be accepted; 0: auth.DefaultCacheTTL.
	TokenCacheTTL time.Duration

	// Telemetry provides /metrics and the gRPC instrumentation; nil: no metrics, no traces.
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
}

func (c *Config) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	for name, a := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr, "ops-addr": c.OpsAddr} {
		if a == "" && name != "ops-addr" {
			bad("%s is empty", name)
		} else if a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("%s %q: %v", name, a, err)
			}
		}
	}
	if c.DatabaseURL == "" {
		bad("database-url is empty")
	} else if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		bad("database-url: %v", err)
	}
	if len(c.EtcdEndpoints) == 0 {
		bad("etcd-endpoints is empty")
	}
	if err := c.Etcd.Validate(c.EtcdEndpoints); err != nil {
		bad("%v", err)
	}
	if p, err := election.KeyPrefix(c.EtcdPrefix); err != nil {
		bad("etcd-prefix: %v", err)
	} else {
		c.EtcdPrefix = p
	}
	if c.Insecure {
		for name, a := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr, "ops-addr": c.OpsAddr} {
			if a != "" && !loopback.Addr(a) {
				bad("--insecure turns authentication off, which is allowed only when every listener is on loopback; "+
					"%s %q is not: drop --insecure (and give clients API tokens, docs/security.md) or listen on 127.0.0.1", name, a)
			}
		}
	}
	if c.BootstrapToken != "" {
		if err := apitoken.ParseSecret(c.BootstrapToken); err != nil {
			bad("bootstrap token: not a Cairn token (want %s followed by 43 base64url characters, e.g. from `cairnctl tokens generate`)", apitoken.SecretPrefix)
		}
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			bad("allowed-origins: %q is not an origin (want scheme://host[:port])", o)
		}
	}
	if c.TokenCacheTTL < 0 {
		bad("token-cache-ttl %v is negative", c.TokenCacheTTL)
	}
	errs = append(errs, c.checkTLS()...)
	if c.MaxBodyBytes < 0 {
		bad("max-body-bytes %d is negative", c.MaxBodyBytes)
	}
	if c.MaxPageSize < 0 {
		bad("max-page-size %d is negative", c.MaxPageSize)
	}
	if c.ForwardTimeout < 0 || c.WatchInterval < 0 || c.ShutdownTimeout < 0 {
		bad("durations must not be negative (forward-timeout %v, watch interval %v, shutdown timeout %v)",
			c.ForwardTimeout, c.WatchInterval, c.ShutdownTimeout)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// DefaultSchedulerServerName is the name verified in the leader's certificate.
const DefaultSchedulerServerName = "cairn-scheduler"

func (c *Config) internalTLS() bool { return c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" }

func (c *Config) checkTLS() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	if c.SchedulerServerName == "" {
		c.SchedulerServerName = DefaultSchedulerServerName
	}
	if !c.internalTLS() && !c.Insecure {
		bad("the gateway has no client certificate for the scheduler: set --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-ca (CAIRN_TLS_CA) " +
			"(make them with `cairnctl certs`, see docs/security-tls.md), or --insecure (CAIRN_INSECURE) for a cluster entirely on loopback")
	}
	if !c.internalTLS() && c.Insecure {
		var settings []loopback.Setting
		for _, ep := range c.EtcdEndpoints {
			settings = append(settings, loopback.Setting{Flag: "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)", Value: ep, Kind: loopback.KindURL})
		}
		if pc, err := pgconn.ParseConfig(c.DatabaseURL); err == nil {
			settings = append(settings, loopback.Setting{Flag: "--database-url (CAIRN_DATABASE_URL) host", Value: pc.Host, Kind: loopback.KindHost})
		}
		if err := loopback.Check(settings); err != nil {
			bad("--insecure (CAIRN_INSECURE) without a client certificate is accepted only when every peer is on loopback (%v); "+
				"set --tls-cert, --tls-key and --tls-ca (docs/security-tls.md)", err)
		}
	}
	if c.internalTLS() {
		if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
			bad("internal TLS needs all of --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-ca (CAIRN_TLS_CA)")
		}
	}
	if (c.PublicTLSCert == "") != (c.PublicTLSKey == "") {
		bad("--public-tls-cert (CAIRN_PUBLIC_TLS_CERT) and --public-tls-key (CAIRN_PUBLIC_TLS_KEY) go together")
	}
	// Tokens must not cross a network in clear: a public listener off loopback serves TLS,
	// unless the operator says a proxy in front of it does.
	if c.PublicTLSCert == "" && !c.PublicPlaintext {
		for name, a := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr} {
			if a != "" && !loopback.Addr(a) {
				bad("%s %q is not on loopback, and API tokens would cross the network in clear: set --public-tls-cert (CAIRN_PUBLIC_TLS_CERT) "+
					"and --public-tls-key (CAIRN_PUBLIC_TLS_KEY), or --public-plaintext (CAIRN_PUBLIC_PLAINTEXT) when a proxy in front of the gateway terminates TLS", name, a)
			}
		}
	}
	return errs
}

// leaderCredentials is the mutual TLS towards the leader; nil without internal TLS.
func (c *Config) leaderCredentials() (credentials.TransportCredentials, error) {
	if !c.internalTLS() {
		return nil, nil
	}
	cert, err := tlsconf.ReadCertFile(c.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert: %v", ErrInvalidConfig, err)
	}
	if id, err := tlsconf.IdentityFromCert(cert); err != nil || id.Role != tlsconf.RoleGateway {
		return nil, fmt.Errorf("%w: --tls-cert %s must name a gateway (URI SAN spiffe://cairn/gateway/<name>); it names %v (%v)",
			ErrInvalidConfig, c.TLSCert, id, err)
	}
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: c.TLSCA, CertFile: c.TLSCert, KeyFile: c.TLSKey,
		ServerName: c.SchedulerServerName, ServerRole: tlsconf.RoleScheduler, MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return credentials.NewTLS(tc), nil
}

// publicTLS is the public listeners' TLS configuration; nil without a public certificate.
func (c *Config) publicTLS() (*tls.Config, error) {
	if c.PublicTLSCert == "" {
		return nil, nil
	}
	tc, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: c.PublicTLSCert, KeyFile: c.PublicTLSKey})
	if err != nil {
		return nil, fmt.Errorf("%w: public TLS: %v", ErrInvalidConfig, err)
	}
	return tc, nil
}

// Gateway is the cairn-gateway process: it implements lifecycle.Service.
type Gateway struct {
	lifecycle.StartStop

	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	grpcAddr net.Addr
	httpAddr net.Addr
	ops      *opsserver.Server
}

var _ lifecycle.Service = (*Gateway)(nil)

// New checks cfg; Start connects and serves.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Gateway{cfg: cfg, log: cfg.Logger.With(slog.String("component", "gateway"))}, nil
}

// GRPCAddr returns the bound gRPC address while running (useful with port 0).
func (g *Gateway) GRPCAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grpcAddr
}

// HTTPAddr returns the bound HTTP address while running.
func (g *Gateway) HTTPAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.httpAddr
}

// OpsAddr returns the bound ops address while running, nil without an ops listener.
func (g *Gateway) OpsAddr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ops == nil {
		return nil
	}
	return g.ops.Addr()
}

// cleanup runs release functions in reverse order.
type cleanup []func()

func (c *cleanup) add(f func()) { *c = append(*c, f) }
func (c cleanup) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// Start connects to PostgreSQL and etcd, binds the listeners and serves in the background.
// Neither PostgreSQL nor a leader needs to be up: /readyz reports what is missing.
func (g *Gateway) Start(ctx context.Context) error {
	return g.StartFunc(ctx, func(ctx context.Context) (lifecycle.RunFunc, error) {
		var undo cleanup
		run, err := g.setup(ctx, &undo)
		if err != nil {
			undo.run()
			return nil, err
		}
		return func(ctx context.Context) error {
			defer undo.run()
			return run(ctx)
		}, nil
	})
}

func (g *Gateway) setup(ctx context.Context, undo *cleanup) (lifecycle.RunFunc, error) {
	cfg := g.cfg
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("gateway: database: %w", err)
	}
	undo.add(pool.Close)
	etcd, err := etcdclient.New(cfg.EtcdEndpoints, cfg.Etcd)
	if err != nil {
		return nil, fmt.Errorf("gateway: etcd client: %w", err)
	}
	undo.add(func() { _ = etcd.Close() })

	var clientOpts []grpc.DialOption
	var serverOpts []grpc.ServerOption
	if t := cfg.Telemetry; t != nil {
		clientOpts = append(clientOpts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithMeterProvider(t.MeterProvider), otelgrpc.WithTracerProvider(t.TracerProvider))))
		serverOpts = append(serverOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithMeterProvider(t.MeterProvider), otelgrpc.WithTracerProvider(t.TracerProvider))))
	}

	leaderCreds, err := cfg.leaderCredentials()
	if err != nil {
		return nil, err
	}
	publicTLS, err := cfg.publicTLS()
	if err != nil {
		return nil, err
	}
	fwd, err := forward.New(forward.Config{
		Client: etcd, Prefix: cfg.EtcdPrefix, Timeout: cfg.ForwardTimeout, Credentials: leaderCreds,
		MaxMessageBytes: max(cfg.MaxBodyBytes, maxResponseBytes), DialOptions: clientOpts, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	watcher, err := membership.NewWatcher(etcd, membership.WithPrefix(cfg.EtcdPrefix), membership.WithLogger(cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := lifecycle.StartAll(ctx, fwd, watcher); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	undo.add(func() { lifecycle.StopAll(fwd, watcher) })

	st := store.New(pool)
	authn, err := auth.New(auth.Config{Store: st, Insecure: cfg.Insecure, CacheTTL: cfg.TokenCacheTTL, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	srv, err := api.New(api.Config{
		Store: st, Forwarder: fwd,
		Cluster:     &etcdCluster{client: etcd, election: election.ElectionPrefix(cfg.EtcdPrefix), workers: watcher},
		MaxPageSize: cfg.MaxPageSize, WatchInterval: cfg.WatchInterval, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gs := grpc.NewServer(append(serverOpts,
		grpc.MaxRecvMsgSize(cfg.MaxBodyBytes),
		grpc.MaxSendMsgSize(maxResponseBytes),
		grpc.ChainUnaryInterceptor(g.logUnary, authn.Unary),
		grpc.ChainStreamInterceptor(g.logStream, authn.Stream),
	)...)
	cairnv1.RegisterAuthServiceServer(gs, srv)
	cairnv1.RegisterWorkflowServiceServer(gs, srv)
	cairnv1.RegisterRunServiceServer(gs, srv)
	cairnv1.RegisterDeadLetterServiceServer(gs, srv)
	cairnv1.RegisterClusterServiceServer(gs, srv)
	cairnv1.RegisterNamespaceServiceServer(gs, srv)
	cairnv1.RegisterSecretServiceServer(gs, srv)

	// Ops: readiness checks and metrics, on the ops listener and on the HTTP listener.
	var metrics http.Handler
	if cfg.Telemetry != nil {
		metrics = cfg.Telemetry.Handler()
	}
	opsAddr := cfg.OpsAddr
	if opsAddr == "" {
		opsAddr = "127.0.0.1:0" // checks still run; the listener is not started
	}
	ops, err := opsserver.New(opsserver.Config{Addr: opsAddr, Metrics: metrics, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	for name, check := range map[string]opsserver.Check{
		"postgres": func(ctx context.Context) error { return pool.Ping(ctx) },
		"etcd":     checkEtcd(etcd, cfg.EtcdPrefix),
		"leader":   fwd.CheckLeader,
	} {
		if err := ops.AddCheck(name, check); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}

	// Listeners.
	var lc net.ListenConfig
	grpcLn, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("gateway: gRPC listener on %s: %w", cfg.GRPCAddr, err)
	}
	undo.add(func() { _ = grpcLn.Close() })
	httpLn, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("gateway: HTTP listener on %s: %w", cfg.HTTPAddr, err)
	}
	undo.add(func() { _ = httpLn.Close() })
	grpcAddr, httpAddr := grpcLn.Addr(), httpLn.Addr()
	if publicTLS != nil {
		// TLS is terminated on the listeners: the gRPC server also serves the in-memory
		// REST loopback, which stays plaintext, so it cannot take TLS credentials itself.
		gtls := publicTLS.Clone()
		gtls.NextProtos = []string{"h2"}
		grpcLn = tls.NewListener(grpcLn, gtls)
		htls := publicTLS.Clone()
		htls.NextProtos = []string{"h2", "http/1.1"}
		httpLn = tls.NewListener(httpLn, htls)
	}
	if cfg.OpsAddr != "" {
		if err := ops.Start(ctx); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		undo.add(ops.Stop)
	}

	// REST goes to the gRPC server through an in-memory connection.
	loop := bufconn.Listen(1 << 20)
	loopConn, err := grpc.NewClient("passthrough:///gateway-loopback",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return loop.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes), grpc.MaxCallSendMsgSize(cfg.MaxBodyBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway: loopback connection: %w", err)
	}
	undo.add(func() { _ = loopConn.Close() })
	rest, err := newRESTMux(ctx, loopConn)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// Without a token, the REST listener answers only /healthz, /readyz and /openapi.json;
	// /metrics needs cluster:read here (the ops listener serves it to anyone who reaches it).
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", ops.Handler())
	mux.Handle("GET /readyz", ops.Handler())
	if metrics != nil {
		mux.Handle("GET /metrics", authn.RequireScope(apitoken.ClusterRead, writeError, metrics))
	}
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.Handle("/", limitBody(int64(cfg.MaxBodyBytes), rest))
	guard := auth.HTTPConfig{AllowedOrigins: cfg.AllowedOrigins, WriteError: writeError}
	if cfg.Insecure {
		guard.AllowedHosts = auth.LoopbackHosts
		g.log.Warn("authentication is OFF (--insecure): every local process and every page a local browser opens may use the API as an admin; " +
			"the REST listener accepts only loopback Host headers")
	}
	hs := &http.Server{
		Handler:           auth.Guard(guard, mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}

	g.mu.Lock()
	g.grpcAddr, g.httpAddr, g.ops = grpcAddr, httpAddr, ops
	g.mu.Unlock()
	undo.add(func() {
		g.mu.Lock()
		g.grpcAddr, g.httpAddr = nil, nil
		g.mu.Unlock()
	})
	// The bootstrap token is stored before serving when PostgreSQL answers (so it works from
	// the first request), else retried in the background.
	bootstrapped := cfg.BootstrapToken != "" && g.bootstrapOnce(ctx, st) == nil
	g.log.Info("gateway serving", slog.String("grpc", grpcAddr.String()), slog.String("http", httpAddr.String()),
		slog.Bool("public_tls", publicTLS != nil), slog.Bool("leader_mtls", leaderCreds != nil),
		slog.String("scheduler_server_name", cfg.SchedulerServerName))

	return func(ctx context.Context) error {
		errc := make(chan error, 3)
		var wg sync.WaitGroup
		serve := func(name string, f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, http.ErrServerClosed) {
					errc <- fmt.Errorf("gateway: %s: %w", name, err)
				}
			}()
		}
		serve("gRPC", func() error { return gs.Serve(grpcLn) })
		serve("loopback gRPC", func() error { return gs.Serve(loop) })
		serve("HTTP", func() error { return hs.Serve(httpLn) })
		if cfg.BootstrapToken != "" && !bootstrapped {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.bootstrap(ctx, st)
			}()
		}
		var err error
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
		g.shutdown(hs, gs)
		wg.Wait()
		return err
	}, nil
}

// shutdown stops accepting, lets requests in flight finish within the shutdown timeout, then
// cancels what is left (WatchRun streams, for instance).
func (g *Gateway) shutdown(hs *http.Server, gs *grpc.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		_ = hs.Shutdown(ctx)
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.log.Warn("gateway: graceful shutdown incomplete; closing remaining connections")
		_ = hs.Close()
		gs.Stop()
		<-done
	}
}

func (g *Gateway) logErr(method string, err error) {
	if err == nil {
		return
	}
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		g.log.Error("request failed", slog.String("method", method), slog.Any("error", err))
	}
}

func (g *Gateway) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	g.logErr(info.FullMethod, err)
	return resp, err
}

func (g *Gateway) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	g.logErr(info.FullMethod, err)
	return err
}

// bootstrapOnce tries once to store the bootstrap token; an error means PostgreSQL did not
// answer (every other outcome is final and logged).
func (g *Gateway) bootstrapOnce(ctx context.Context, st *store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tok := store.Token{Name: "bootstrap", CreatedBy: "bootstrap", Grants: apitoken.Grants{
		Scopes: []apitoken.Scope{apitoken.Admin}, Namespaces: []string{apitoken.AllNamespaces}}}
	t, created, err := st.EnsureToken(ctx, tok, apitoken.Hash(g.cfg.BootstrapToken))
	switch {
	case err == nil && created:
		g.log.Info("bootstrap token stored", "token", t.Name, "token_id", t.ID)
	case err == nil && !t.RevokedAt.IsZero():
		g.log.Warn("the bootstrap token was revoked and stays revoked; remove it from the gateway's configuration", "token_id", t.ID)
	case err == nil:
	case errors.Is(err, store.ErrConflict):
		g.log.Error("a live token named bootstrap exists with another secret; revoke it to store the configured one", "error", err)
	default:
		return err
	}
	return nil
}

// bootstrap stores the bootstrap token, retrying until PostgreSQL answers or ctx ends.
func (g *Gateway) bootstrap(ctx context.Context, st *store.Store) {
	for {
		err := g.bootstrapOnce(ctx, st)
		if err == nil {
			return
		}
		g.log.Warn("cannot store the bootstrap token yet; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
