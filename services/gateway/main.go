// Command cairn-gateway serves Cairn's public API: gRPC, REST through grpc-gateway, the
// OpenAPI document, health, readiness and metrics. It reads from PostgreSQL and forwards
// mutations to the scheduler leader found through etcd. `cairn-gateway --help` lists the
// flags and their CAIRN_* environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-io/cairn/pkg/envflag"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/telemetry"
	"github.com/cairn-io/cairn/services/gateway/internal/api"
	"github.com/cairn-io/cairn/services/gateway/internal/forward"
	"github.com/cairn-io/cairn/services/gateway/internal/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	cfg                         gateway.Config
	forwardTimeout, watch, stop envflag.Duration
	logFormat, logLevel, otlp   string
	bootstrapFile               string
}

func parse(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := envflag.New("cairn-gateway", "cairn-gateway: Cairn's public API (gRPC and REST); reads PostgreSQL, forwards mutations to the scheduler leader.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&o.cfg.GRPCAddr, "grpc-addr", "CAIRN_GRPC_ADDR", gateway.DefaultGRPCAddr, "listen address of the gRPC API")
	fs.String(&o.cfg.HTTPAddr, "http-addr", "CAIRN_HTTP_ADDR", gateway.DefaultHTTPAddr, "listen address of the REST API, /openapi.json, /healthz, /readyz and /metrics")
	fs.String(&o.cfg.OpsAddr, "ops-addr", "CAIRN_OPS_ADDR", gateway.DefaultOpsAddr, "listen address of /healthz, /readyz and /metrics; empty to serve them on --http-addr only")
	fs.String(&o.cfg.DatabaseURL, "database-url", "CAIRN_DATABASE_URL", "postgres://cairn@127.0.0.1:5432/cairn?sslmode=disable", "PostgreSQL URL")
	fs.List(&o.cfg.EtcdEndpoints, "etcd-endpoints", "CAIRN_ETCD_ENDPOINTS", []string{"http://127.0.0.1:2379"}, "comma-separated etcd client URLs")
	fs.String(&o.cfg.EtcdPrefix, "etcd-prefix", "CAIRN_ETCD_PREFIX", "/cairn/", "etcd key prefix (ends with /)")
	etcdFlags := etcdclient.AddFlags(fs, &o.cfg.Etcd)
	fs.String(&o.cfg.TLSCert, "tls-cert", "CAIRN_TLS_CERT", "", "client certificate towards the scheduler leader (spiffe://cairn/gateway/<name>)")
	fs.String(&o.cfg.TLSKey, "tls-key", "CAIRN_TLS_KEY", "", "key of --tls-cert")
	fs.String(&o.cfg.TLSCA, "tls-ca", "CAIRN_TLS_CA", "", "CA file the scheduler's certificate must chain to")
	fs.String(&o.cfg.SchedulerServerName, "scheduler-server-name", "CAIRN_SCHEDULER_SERVER_NAME", gateway.DefaultSchedulerServerName,
		"the name the leader's certificate must carry, whatever address etcd publishes")
	fs.String(&o.cfg.PublicTLSCert, "public-tls-cert", "CAIRN_PUBLIC_TLS_CERT", "", "certificate of the public gRPC and REST listeners (serve TLS when set)")
	fs.String(&o.cfg.PublicTLSKey, "public-tls-key", "CAIRN_PUBLIC_TLS_KEY", "", "key of --public-tls-cert")
	fs.Int(&o.cfg.MaxBodyBytes, "max-body-bytes", "CAIRN_MAX_BODY_BYTES", gateway.DefaultMaxBodyBytes, "largest REST request body and gRPC request message, in bytes (413 / RESOURCE_EXHAUSTED beyond)")
	fs.Int(&o.cfg.MaxPageSize, "max-page-size", "CAIRN_MAX_PAGE_SIZE", 500, "largest page_size honoured; larger requests are capped")
	fs.Duration(&o.forwardTimeout, "forward-timeout", "CAIRN_FORWARD_TIMEOUT", envflag.Duration(forward.DefaultTimeout), "bound on a mutation forwarded to the leader, retries during a failover included")
	fs.Duration(&o.watch, "watch-interval", "CAIRN_WATCH_INTERVAL", envflag.Duration(api.DefaultWatchInterval), "how often WatchRun polls a live run's events")
	fs.Duration(&o.stop, "shutdown-timeout", "CAIRN_SHUTDOWN_TIMEOUT", envflag.Duration(gateway.DefaultShutdownTimeout), "time requests in flight get to finish on SIGTERM")
	fs.Bool(&o.cfg.PublicPlaintext, "public-plaintext", "CAIRN_PUBLIC_PLAINTEXT", false, "serve the public API without TLS off loopback (only behind a proxy that terminates TLS)")
	fs.Bool(&o.cfg.Insecure, "insecure", "CAIRN_INSECURE", false, "turn authentication off (every caller is an admin) and, without --tls-cert, dial the scheduler in plaintext; refused unless every listener is on loopback")
	fs.String(&o.bootstrapFile, "bootstrap-token-file", "CAIRN_BOOTSTRAP_TOKEN_FILE", "", "file holding a token secret to store as the admin token \"bootstrap\" (the environment variable CAIRN_BOOTSTRAP_TOKEN may hold the secret itself)")
	fs.List(&o.cfg.AllowedOrigins, "allowed-origins", "CAIRN_ALLOWED_ORIGINS", nil, "comma-separated origins (scheme://host[:port]) besides the gateway's own that browsers may call the API from")
	fs.String(&o.logFormat, "log-format", "CAIRN_LOG_FORMAT", "text", "log format: text or json")
	fs.String(&o.logLevel, "log-level", "CAIRN_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	fs.String(&o.otlp, "otlp-endpoint", "CAIRN_OTLP_ENDPOINT", "", "OTLP/gRPC trace endpoint (host:port or http(s)://host:port); empty: no export")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: cairn-gateway takes flags only", rest)
	}
	if err := etcdFlags.Finish(nil); err != nil {
		return nil, err
	}
	o.cfg.ForwardTimeout, o.cfg.WatchInterval, o.cfg.ShutdownTimeout = o.forwardTimeout.D(), o.watch.D(), o.stop.D()
	// The bootstrap secret never comes from the command line (argv is readable by every local
	// user): from a file, or from the environment.
	o.cfg.BootstrapToken = os.Getenv("CAIRN_BOOTSTRAP_TOKEN")
	if o.bootstrapFile != "" {
		if o.cfg.BootstrapToken != "" {
			return nil, errors.New("bootstrap token: set CAIRN_BOOTSTRAP_TOKEN or --bootstrap-token-file, not both")
		}
		data, err := os.ReadFile(o.bootstrapFile)
		if err != nil {
			return nil, fmt.Errorf("bootstrap-token-file: %w", err)
		}
		o.cfg.BootstrapToken = strings.TrimSpace(string(data))
	}
	return &o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn-gateway: %v\n", err)
		return 2
	}
	log, err := telemetry.NewLogger(o.logFormat, o.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cairn-gateway: %v\n", err)
		return 2
	}
	host, _ := os.Hostname()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Service: "cairn-gateway", Version: version, InstanceID: host, OTLPEndpoint: o.otlp, SetGlobal: true,
	})
	if err != nil {
		fmt.Fprintf(stderr, "cairn-gateway: %v\n", err)
		return 2
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	o.cfg.Telemetry, o.cfg.Logger = tel, log
	g, err := gateway.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cairn-gateway: %v\n", err)
		return 2
	}
	if err := g.Start(ctx); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case <-g.Done():
	}
	g.Stop()
	if err := g.Err(); err != nil {
		log.Error("gateway stopped", "error", err)
		return 1
	}
	return 0
}
