package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/etcdlocal"
	"github.com/cairn-io/cairn/pkg/pglocal"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	gateway "github.com/cairn-io/cairn/services/gateway/inprocess"
	scheduler "github.com/cairn-io/cairn/services/scheduler/inprocess"
	worker "github.com/cairn-io/cairn/services/worker/inprocess"
)

// Options configure a dev cluster. Zero values take the defaults in brackets.
type Options struct {
	Dir         string // state: PostgreSQL data, etcd data, logs [.cairn]
	DatabaseURL string // use this database instead of starting PostgreSQL
	Examples    string // directory of workflows to apply at start ["examples"; "" skips]
	GRPCAddr    string // public gRPC API [127.0.0.1:7070]
	HTTPAddr    string // REST API [127.0.0.1:8080]
	OpsAddr     string // the gateway's plain-HTTP /healthz, /readyz, /metrics [127.0.0.1:9090]
	Workers     int    // worker processes (in-process) [1]
	Concurrency int    // slots per worker [4]
	LogLevel    string // [info]; logs go to DIR/cairn.log
	Out         io.Writer
	// Ready, if set, receives the cluster's addresses once everything runs.
	Ready func(Addrs)
}

// Addrs are where a running dev cluster listens, and its admin token.
type Addrs struct {
	GRPC, HTTP, Ops, Database string
	Etcd                      []string
	Workflows                 []string
	// Token is the dev cluster's admin token (kept in DIR/dev-token between runs).
	Token string
	// CAFile is the dev CA (DIR/tls/ca.pem): the gateway's public gRPC and REST serve TLS
	// with a certificate for localhost, 127.0.0.1 and ::1 that it signed.
	CAFile string
}

// DevEgressAllow is what dev mode's workers add to the egress policy: loopback, so that
// examples and HTTP tasks under development can call services on this machine (the
// healthcheck example calls the gateway). A deployed worker allows nothing by default.
const DevEgressAllow = "127.0.0.0/8,::1/128"

// ErrSetup is matched by every error that stops the cluster from starting (a port in use,
// PostgreSQL binaries missing...); its message is meant for people, not a stack trace.
var ErrSetup = errors.New("dev")

func setupErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrSetup, fmt.Sprintf(format, a...))
}

// stack runs release functions in reverse order.
type stack []func()

func (s *stack) push(f func()) { *s = append(*s, f) }
func (s stack) unwind() {
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// Run starts everything, applies the examples, prints the addresses, and blocks until ctx
// ends; then it stops everything, PostgreSQL included.
func Run(ctx context.Context, o Options) (err error) {
	if o.Dir == "" {
		o.Dir = ".cairn"
	}
	if o.GRPCAddr == "" {
		o.GRPCAddr = "127.0.0.1:7070"
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = "127.0.0.1:8080"
	}
	if o.OpsAddr == "" {
		o.OpsAddr = "127.0.0.1:9090"
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	for _, a := range []struct{ name, addr string }{{"gRPC API", o.GRPCAddr}, {"REST API", o.HTTPAddr}, {"ops", o.OpsAddr}} {
		if err := portFree(a.addr); err != nil {
			return setupErr("the %s address %s is not available (%v); is another `cairnctl dev` running? Choose another with the --grpc-addr/--http-addr/--ops-addr flags", a.name, a.addr, err)
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return setupErr("cannot create the state directory %s: %v", dir, err)
	}
	// The state directory must be enterable by the postgres user when running as root.
	_ = os.Chmod(dir, 0o755)
	logFile, err := os.OpenFile(filepath.Join(dir, "cairn.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return setupErr("cannot open the log file: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return setupErr("log level %q: %v", o.LogLevel, err)
	}
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: level}))

	var cleanup stack
	defer func() { cleanup.unwind() }()
	cleanup.push(func() { _ = logFile.Close() })
	say := func(format string, a ...any) { fmt.Fprintf(o.Out, format+"\n", a...) }

	// etcd.
	etcd, err := etcdlocal.Start(etcdlocal.Config{Dir: filepath.Join(dir, "etcd"), LogFile: filepath.Join(dir, "etcd.log")})
	if err != nil {
		return setupErr("embedded etcd: %v", err)
	}
	cleanup.push(etcd.Close)
	say("etcd        %s (embedded; data in %s)", strings.Join(etcd.Endpoints(), ","), filepath.Join(o.Dir, "etcd"))

	// PostgreSQL.
	dbURL := o.DatabaseURL
	if dbURL == "" {
		pg, err := pglocal.Start(ctx, pglocal.Config{Dir: filepath.Join(dir, "pg"), Fsync: true})
		if errors.Is(err, pglocal.ErrBinariesNotFound) {
			return setupErr("%v", err)
		}
		if err != nil {
			return setupErr("local PostgreSQL: %v", err)
		}
		cleanup.push(func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := pg.Stop(sctx); err != nil {
				fmt.Fprintf(o.Out, "stopping PostgreSQL: %v\n", err)
			}
		})
		if err := createDatabase(ctx, pg.URL("postgres"), "cairn"); err != nil {
			return setupErr("create database: %v", err)
		}
		dbURL = pg.URL("cairn")
		say("PostgreSQL  %s (data in %s)", dbURL, filepath.Join(o.Dir, "pg"))
	} else {
		say("PostgreSQL  %s (CAIRN_DATABASE_URL)", dbURL)
	}

	// Certificates: internal traffic is mutual TLS and the public API is TLS, as in production.
	certs, err := setupTLS(dir, o.Workers)
	if err != nil {
		return setupErr("certificates under %s: %v", filepath.Join(o.Dir, "tls"), err)
	}
	if certs.createdCA {
		say("TLS         a new dev CA in %s; every component got its certificate", filepath.Join(o.Dir, "tls"))
	} else {
		say("TLS         the dev CA in %s (kept from a previous run)", filepath.Join(o.Dir, "tls"))
	}

	// Scheduler, with a dev keyring for secrets (kept between runs, like the data).
	keyring := filepath.Join(dir, "secrets-keyring")
	if err := devKeyring(keyring); err != nil {
		return setupErr("secrets keyring: %v", err)
	}
	endpoints := strings.Join(etcd.Endpoints(), ",")
	scfg, err := scheduler.ParseFlags([]string{"--database-url=" + dbURL, "--etcd-endpoints=" + endpoints,
		"--grpc-addr=127.0.0.1:0", "--ops-addr=127.0.0.1:0", "--id=dev-scheduler",
		"--tls-cert=" + certs.schedCert, "--tls-key=" + certs.schedKey, "--tls-client-ca=" + certs.CAFile(),
		"--scheduler-server-name=" + SchedulerServerName, "--secrets-keyring-file=" + keyring})
	if err != nil {
		return err
	}
	scfg.Logger = log.With("service", "scheduler")
	sched, err := scheduler.Start(ctx, scfg)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	cleanup.push(func() {
		if err := sched.Stop(); err != nil {
			say("stopping the scheduler: %v", err)
		}
	})
	if err := waitFor(ctx, 30*time.Second, sched.Leading); err != nil {
		return fmt.Errorf("scheduler did not become leader: %w", err)
	}
	say("scheduler   %s (leader, epoch %d; ops %s)", sched.GRPCAddr(), sched.Epoch(), sched.OpsAddr())
	say("            secrets sealed with the dev keyring %s", filepath.Join(o.Dir, "secrets-keyring"))

	// Gateway, with authentication on: the dev token is its bootstrap admin token.
	token, err := devToken(filepath.Join(dir, "dev-token"))
	if err != nil {
		return setupErr("dev token: %v", err)
	}
	gw, err := gateway.New(gateway.Config{GRPCAddr: o.GRPCAddr, HTTPAddr: o.HTTPAddr, OpsAddr: o.OpsAddr, DatabaseURL: dbURL,
		EtcdEndpoints: etcd.Endpoints(), Logger: log.With("service", "gateway"), BootstrapToken: token,
		TLSCert: certs.gatewayCert, TLSKey: certs.gatewayKey, TLSCA: certs.CAFile(), SchedulerServerName: SchedulerServerName,
		PublicTLSCert: certs.gatewayCert, PublicTLSKey: certs.gatewayKey})
	if err != nil {
		return err
	}
	if err := gw.Start(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	cleanup.push(gw.Stop)

	// Workers.
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	cleanup.push(func() { stopWorkers(); wg.Wait() })
	taskUser := devTaskUser()
	for i := 1; i <= o.Workers; i++ {
		args := []string{"--etcd-endpoints=" + endpoints, "--id=" + workerID(i),
			fmt.Sprintf("--concurrency=%d", o.Concurrency), "--ops-addr=127.0.0.1:0", "--egress-allow=" + DevEgressAllow,
			"--tls-cert=" + certs.workers[i-1][0], "--tls-key=" + certs.workers[i-1][1], "--tls-ca=" + certs.CAFile(),
			"--scheduler-server-name=" + SchedulerServerName}
		if taskUser != "" {
			args = append(args, "--task-user="+taskUser)
		}
		wcfg, err := worker.ParseFlags(args)
		if err != nil {
			return err
		}
		wcfg.Logger = log.With("service", "worker", "worker", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker.Run(wctx, wcfg); err != nil && wctx.Err() == nil {
				log.Error("worker stopped", "err", err)
				fmt.Fprintf(o.Out, "worker %d stopped: %v (see %s)\n", i, err, filepath.Join(o.Dir, "cairn.log"))
			}
		}()
	}
	say("workers     %d × %d slots (pool default)", o.Workers, o.Concurrency)
	say("            HTTP tasks may call loopback (dev mode: --egress-allow %s)", DevEgressAllow)
	switch taskUser {
	case "":
	case "root":
		say("            shell tasks run as root (no user nobody here): they could read the dev keys")
	default:
		say("            shell tasks run as user %s (--task-user): the keys under %s are not theirs to read", taskUser, filepath.Join(o.Dir, "tls"))
	}

	// Examples.
	var applied []string
	if o.Examples != "" {
		applied, err = applyExamples(ctx, gw.GRPCAddr().String(), token, certs.CAFile(), o.Examples)
		if err != nil {
			return err
		}
	}
	addrs := Addrs{GRPC: gw.GRPCAddr().String(), HTTP: gw.HTTPAddr().String(), Ops: gw.OpsAddr().String(), Database: dbURL, Etcd: etcd.Endpoints(),
		Workflows: applied, Token: token, CAFile: certs.CAFile()}
	if err := writeClientConfig(filepath.Join(dir, "cairnctl.json"), addrs); err != nil {
		return setupErr("client configuration: %v", err)
	}
	say("")
	say("Cairn is running. gRPC API on %s (TLS), REST API on https://%s (/openapi.json, /readyz, /metrics).", addrs.GRPC, addrs.HTTP)
	say("Gateway health and metrics in plain HTTP (loopback only): http://%s/healthz, /readyz, /metrics", addrs.Ops)
	say("TLS CA: %s (internal traffic is mutual TLS; clients verify the gateway with this CA)", filepath.Join(o.Dir, "tls", tlsconf.CACertFile))
	if len(applied) > 0 {
		say("Workflows applied from %s: %s", o.Examples, strings.Join(applied, ", "))
	}
	say("Logs: %s", filepath.Join(o.Dir, "cairn.log"))
	say("")
	say("Admin token (dev only): %s", token)
	say("  kept in %s; cairnctl run from this directory uses it (%s)", filepath.Join(o.Dir, "dev-token"), filepath.Join(o.Dir, "cairnctl.json"))
	say("")
	say("Try, in another terminal:")
	say("  ./bin/cairnctl run orders-etl --wait")
	say("  curl -s --cacert %s -H \"Authorization: Bearer $(cat %s)\" -H 'Content-Type: application/json' -X POST https://%s/v1/workflows/orders-etl/runs -d '{}'",
		filepath.Join(o.Dir, "tls", tlsconf.CACertFile), filepath.Join(o.Dir, "dev-token"), publicURLHost(addrs.HTTP))
	say("")
	say("Ctrl-C stops everything.")
	if o.Ready != nil {
		o.Ready(addrs)
	}
	<-ctx.Done()
	say("stopping...")
	return nil
}

// devTaskUser is whom dev workers run shell tasks as: nobody when cairnctl runs as root (a
// worker refuses to run tasks as root unless told), else the current user.
func devTaskUser() string {
	if os.Geteuid() != 0 {
		return ""
	}
	if _, err := user.Lookup("nobody"); err == nil {
		return "nobody"
	}
	return "root"
}

// publicURLHost is addr for a URL: "localhost:port" for 127.0.0.1 (the certificate names
// both; curl users type localhost).
func publicURLHost(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "127.0.0.1" {
		return net.JoinHostPort("localhost", port)
	}
	return addr
}

func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P04" { // duplicate_database: kept from a previous run
		return nil
	}
	return err
}

// applyExamples applies every *.yaml in dir through the gateway, retrying while the gateway
// does not know the leader yet.
func applyExamples(ctx context.Context, addr, token, caFile, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: caFile})
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithPerRPCCredentials(apitoken.Bearer{Secret: token}))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := cairnv1.NewWorkflowServiceClient(conn)
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := client.ApplyWorkflow(cctx, &cairnv1.ApplyWorkflowRequest{Yaml: string(data)})
			cancel()
			if err == nil {
				names = append(names, resp.GetWorkflow().GetName())
				break
			}
			if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
				return nil, fmt.Errorf("apply %s: %w", f, err)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return names, nil
}

// devToken returns the dev cluster's admin token from path, making it (mode 0600) on the
// first run: the same token across restarts, so a terminal keeps working.
func devToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(data)); apitoken.ParseSecret(tok) == nil {
			return tok, nil
		}
		return "", fmt.Errorf("%s does not hold a token; delete it to get a new one", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	tok := apitoken.NewSecret()
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// devKeyring makes the dev cluster's secrets keyring at path (mode 0600) on the first run, and
// keeps it afterwards: secrets set in an earlier run stay readable.
func devKeyring(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	line, err := secretbox.NewKeyLine("dev-1")
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte("# cairnctl dev: the key that seals this dev cluster's secrets (dev only)\n"+line+"\n"), 0o600)
}

// writeClientConfig writes the configuration cairnctl reads from the current directory
// (.cairn/cairnctl.json), mode 0600: it holds the token.
func writeClientConfig(path string, a Addrs) error {
	data, err := json.MarshalIndent(map[string]string{"addr": a.GRPC, "ca_file": a.CAFile, "server_name": "localhost", "token": a.Token}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
