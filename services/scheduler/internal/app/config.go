package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/envflag"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/loopback"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/telemetry"
)

// ErrConfig is matched by every configuration error: the binary exits with status 2.
var ErrConfig = errors.New("configuration error")

// Config is everything the scheduler binary is configured with.
type Config struct {
	DatabaseURL     string
	EtcdEndpoints   []string
	Etcd            etcdclient.Security // TLS and authentication towards etcd
	EtcdPrefix      string
	GRPCAddr        string
	AdvertiseAddr   string
	OpsAddr         string
	ID              string
	SessionTTL      time.Duration
	AdoptGrace      time.Duration
	AttemptGrace    time.Duration
	ShutdownTimeout time.Duration
	Migrate         bool
	LogFormat       string
	LogLevel        string
	OTLPEndpoint    string
	Pprof           bool
	// SecretsKeyringFile is the keyring file (--secrets-keyring-file); SecretsKeyring is the
	// keyring itself, from CAIRN_SECRETS_KEYRING only (never a flag: argv is visible to every
	// user of the machine). At most one is set; Validate opens it into Keyring.
	SecretsKeyringFile string
	SecretsKeyring     string

	// TLSCert and TLSKey are the gRPC listener's certificate (identity
	// spiffe://cairn/scheduler/<name>, DNS SAN SchedulerServerName) and key; TLSClientCA is
	// the CA every client certificate must chain to. See docs/security-tls.md.
	TLSCert, TLSKey, TLSClientCA string
	// SchedulerServerName is the name gateways and workers verify in the scheduler's
	// certificate; the replica refuses to start with a certificate that does not carry it.
	SchedulerServerName string
	// Insecure serves gRPC in plaintext without client certificates. Accepted only when every
	// listen and peer address is on loopback.
	Insecure bool

	// Not flags: set by tests and embedders.

	// Logger replaces the logger built from LogFormat and LogLevel.
	Logger *slog.Logger
	// SetGlobalTelemetry installs the OpenTelemetry providers as the process globals (the
	// binary does; in-process tests running several schedulers do not).
	SetGlobalTelemetry bool
	// Now is the cron loop's clock; nil means time.Now.
	Now func() time.Time
	// CronInterval is the cron loop's tick; zero means one second.
	CronInterval time.Duration
	// Keyring seals and unseals secrets (docs/secrets.md). Validate opens it from
	// SecretsKeyringFile or SecretsKeyring when it is nil; with neither, the scheduler runs
	// without one: secrets cannot be set, and workflows that reference them are refused.
	Keyring *secretbox.Keyring
}

// DefaultSchedulerServerName is the DNS name clients verify in a scheduler's certificate.
const DefaultSchedulerServerName = "cairn-scheduler"

// Summary is the first line of --help.
const Summary = "cairn-scheduler: the Cairn scheduler replica (one leader elected through etcd runs the DAGs)"

// ParseFlags reads the configuration from args and the environment (lookupEnv; nil means
// os.LookupEnv) and validates it. --help prints the flags to out and returns flag.ErrHelp.
func ParseFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	var c Config
	fs := envflag.New("cairn-scheduler", Summary)
	if lookupEnv != nil {
		fs.SetLookupEnv(lookupEnv)
	}
	fs.FlagSet().SetOutput(out)
	var sessionTTL, adoptGrace, attemptGrace, shutdown envflag.Duration
	fs.String(&c.DatabaseURL, "database-url", "CAIRN_DATABASE_URL", "",
		"PostgreSQL URL, e.g. postgres://cairn:secret@127.0.0.1:5432/cairn (required)")
	fs.List(&c.EtcdEndpoints, "etcd-endpoints", "CAIRN_ETCD_ENDPOINTS", []string{"http://127.0.0.1:2379"},
		"comma-separated etcd client URLs")
	fs.String(&c.EtcdPrefix, "etcd-prefix", "CAIRN_ETCD_PREFIX", election.DefaultPrefix,
		"etcd key prefix of every Cairn key (must end with /)")
	etcdFlags := etcdclient.AddFlags(fs, &c.Etcd)
	fs.String(&c.GRPCAddr, "grpc-addr", "CAIRN_GRPC_ADDR", "127.0.0.1:7071",
		"listen address of the gRPC server (WorkerService, SchedulerService); port 0 picks a free port")
	fs.String(&c.AdvertiseAddr, "advertise-addr", "CAIRN_ADVERTISE_ADDR", "",
		"address others reach this replica's gRPC server at, published while it leads (default: the listen address, with the host name for 0.0.0.0)")
	fs.String(&c.OpsAddr, "ops-addr", "CAIRN_OPS_ADDR", "127.0.0.1:9091",
		"listen address of the ops HTTP server (/healthz, /readyz, /metrics)")
	fs.String(&c.ID, "id", "CAIRN_SCHEDULER_ID", "",
		"unique id of this replica, recorded as the leadership holder (default: hostname-pid)")
	fs.Duration(&sessionTTL, "session-ttl", "CAIRN_SESSION_TTL", envflag.Duration(election.DefaultSessionTTL),
		"etcd session TTL of the election: how long a vanished leader keeps office (1s..1h)")
	fs.Duration(&adoptGrace, "adopt-grace", "CAIRN_ADOPT_GRACE", envflag.Duration(10*time.Second),
		"after a failover, how long live workers have to re-attach their running attempts before they are lost; set it to the workers' lease TTL")
	fs.Duration(&attemptGrace, "attempt-grace", "CAIRN_ATTEMPT_GRACE", envflag.Duration(30*time.Second),
		"added to a task's timeout to form the leader's own attempt deadline")
	fs.Duration(&shutdown, "shutdown-timeout", "CAIRN_SHUTDOWN_TIMEOUT", envflag.Duration(20*time.Second),
		"on SIGTERM, how long open gRPC calls get to finish after the leader resigned")
	fs.Bool(&c.Migrate, "migrate", "CAIRN_MIGRATE", true,
		"apply database migrations at start-up, under the etcd lock locks/migrations")
	fs.String(&c.LogFormat, "log-format", "CAIRN_LOG_FORMAT", "text", "log format: text or json")
	fs.String(&c.LogLevel, "log-level", "CAIRN_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	fs.String(&c.OTLPEndpoint, "otlp-endpoint", "CAIRN_OTLP_ENDPOINT", "",
		"OTLP/gRPC endpoint for traces (host:port, http:// or https://); empty: traces are not exported")
	fs.Bool(&c.Pprof, "pprof", "CAIRN_PPROF", false,
		"serve /debug/pprof/ on the ops address (profiling; keep the ops address private)")
	fs.String(&c.TLSCert, "tls-cert", "CAIRN_TLS_CERT", "",
		"certificate of the gRPC listener (spiffe://cairn/scheduler/<name>, DNS name --scheduler-server-name)")
	fs.String(&c.TLSKey, "tls-key", "CAIRN_TLS_KEY", "", "key of --tls-cert")
	fs.String(&c.TLSClientCA, "tls-client-ca", "CAIRN_TLS_CLIENT_CA", "",
		"CA file client certificates (gateways, workers) must chain to; every gRPC client must present one")
	fs.String(&c.SchedulerServerName, "scheduler-server-name", "CAIRN_SCHEDULER_SERVER_NAME", DefaultSchedulerServerName,
		"the DNS name in --tls-cert that gateways and workers verify")
	fs.Bool(&c.Insecure, "insecure", "CAIRN_INSECURE", false,
		"serve gRPC in plaintext without client certificates; only accepted when every address is on loopback")
	fs.String(&c.SecretsKeyringFile, "secrets-keyring-file", KeyringFileEnv, "",
		"file holding the keyring that seals secrets (key-id:base64-key lines, the first active; keep it mode 0600); "+
			"or put the keyring itself in "+KeyringEnv+". Without one, secrets cannot be set or used")
	lookup := lookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c.SecretsKeyring, _ = lookup(KeyringEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if rest := fs.Args(); len(rest) > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q (all settings are --flags)", ErrConfig, rest)
	}
	if err := etcdFlags.Finish(lookupEnv); err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.SessionTTL, c.AdoptGrace, c.AttemptGrace, c.ShutdownTimeout = sessionTTL.D(), adoptGrace.D(), attemptGrace.D(), shutdown.D()
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Validate fills defaults that depend on the host (ID) and checks every setting. Each problem
// names its flag and variable; all of them are reported, each wrapping ErrConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
	}
	if c.DatabaseURL == "" {
		bad("--database-url (CAIRN_DATABASE_URL) is required: the PostgreSQL URL, e.g. postgres://cairn:secret@127.0.0.1:5432/cairn")
	} else if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		bad("--database-url (CAIRN_DATABASE_URL) is not a valid PostgreSQL URL: %v", err)
	}
	if len(c.EtcdEndpoints) == 0 {
		bad("--etcd-endpoints (CAIRN_ETCD_ENDPOINTS) is empty")
	}
	for _, ep := range c.EtcdEndpoints {
		if err := checkEndpoint(ep); err != nil {
			bad("--etcd-endpoints (CAIRN_ETCD_ENDPOINTS): %v", err)
		}
	}
	if err := c.Etcd.Validate(c.EtcdEndpoints); err != nil {
		bad("%v", err)
	}
	if _, err := election.KeyPrefix(c.EtcdPrefix); err != nil || c.EtcdPrefix == "" {
		bad("--etcd-prefix (CAIRN_ETCD_PREFIX) %q must be non-empty and end with \"/\"", c.EtcdPrefix)
	}
	checkAddr := func(flag, env, v string, required bool) {
		if v == "" {
			if required {
				bad("--%s (%s) is empty", flag, env)
			}
			return
		}
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			bad("--%s (%s) %q must be host:port", flag, env, v)
		}
	}
	checkAddr("grpc-addr", "CAIRN_GRPC_ADDR", c.GRPCAddr, true)
	checkAddr("ops-addr", "CAIRN_OPS_ADDR", c.OpsAddr, true)
	checkAddr("advertise-addr", "CAIRN_ADVERTISE_ADDR", c.AdvertiseAddr, false)
	if c.AdvertiseAddr != "" {
		if _, port, err := net.SplitHostPort(c.AdvertiseAddr); err == nil && port == "0" {
			bad("--advertise-addr (CAIRN_ADVERTISE_ADDR) %q cannot use port 0", c.AdvertiseAddr)
		}
	}
	if c.ID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "scheduler"
		}
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if len(c.ID) > 128 || strings.ContainsAny(c.ID, " \t\n/") {
		bad("--id (CAIRN_SCHEDULER_ID) %q must be at most 128 characters without spaces or /", c.ID)
	}
	switch {
	case c.SessionTTL < time.Second || c.SessionTTL > time.Hour:
		bad("--session-ttl (CAIRN_SESSION_TTL) %v must be within 1s..1h", c.SessionTTL)
	}
	if c.AdoptGrace <= 0 {
		bad("--adopt-grace (CAIRN_ADOPT_GRACE) %v must be positive", c.AdoptGrace)
	}
	if c.AttemptGrace < 0 {
		bad("--attempt-grace (CAIRN_ATTEMPT_GRACE) %v must not be negative", c.AttemptGrace)
	}
	if c.ShutdownTimeout <= 0 {
		bad("--shutdown-timeout (CAIRN_SHUTDOWN_TIMEOUT) %v must be positive", c.ShutdownTimeout)
	}
	if c.SchedulerServerName == "" {
		c.SchedulerServerName = DefaultSchedulerServerName
	}
	errs = append(errs, c.validateTLS()...)
	if err := c.openKeyring(); err != nil {
		bad("%v", err)
	}
	if c.Logger == nil {
		if _, err := telemetry.NewLogger(c.LogFormat, c.LogLevel, io.Discard); err != nil {
			bad("--log-format (CAIRN_LOG_FORMAT) / --log-level (CAIRN_LOG_LEVEL): %v", err)
		}
	}
	return errors.Join(errs...)
}

// The keyring's settings. The keyring itself is accepted only from the environment.
const (
	KeyringFileEnv = "CAIRN_SECRETS_KEYRING_FILE"
	KeyringEnv     = "CAIRN_SECRETS_KEYRING"
)

// openKeyring sets Keyring from SecretsKeyringFile or SecretsKeyring, unless it is set. Its
// errors name the setting and the keyring line, never key material.
func (c *Config) openKeyring() error {
	if c.Keyring != nil {
		return nil
	}
	switch {
	case c.SecretsKeyringFile != "" && strings.TrimSpace(c.SecretsKeyring) != "":
		return fmt.Errorf("--secrets-keyring-file (%s) and %s are both set: give the keyring one way", KeyringFileEnv, KeyringEnv)
	case c.SecretsKeyringFile != "":
		k, err := secretbox.OpenFile(c.SecretsKeyringFile)
		if err != nil {
			return fmt.Errorf("--secrets-keyring-file (%s): %v", KeyringFileEnv, err)
		}
		c.Keyring = k
	case strings.TrimSpace(c.SecretsKeyring) != "":
		k, err := secretbox.Open([]byte(c.SecretsKeyring))
		if err != nil {
			return fmt.Errorf("%s: %v", KeyringEnv, err)
		}
		c.Keyring = k
	}
	return nil
}

// KeyringFileLoose reports whether the keyring file can be read by users other than its
// owner (the scheduler warns at start-up).
func (c *Config) KeyringFileLoose() bool {
	if c.SecretsKeyringFile == "" {
		return false
	}
	fi, err := os.Stat(c.SecretsKeyringFile)
	return err == nil && fi.Mode().Perm()&0o077 != 0
}

func checkEndpoint(ep string) error {
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return fmt.Errorf("endpoint %q: %v", ep, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("endpoint %q: scheme must be http or https", ep)
		}
		if u.Host == "" {
			return fmt.Errorf("endpoint %q has no host", ep)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		return fmt.Errorf("endpoint %q must be a URL (http://host:port) or host:port", ep)
	}
	return nil
}

// tlsConfigured reports whether internal TLS is set up.
func (c *Config) tlsConfigured() bool {
	return c.TLSCert != "" || c.TLSKey != "" || c.TLSClientCA != ""
}

// validateTLS checks the internal TLS settings: TLS, or the insecure mode with every
// address on loopback.
func (c *Config) validateTLS() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
	}
	switch {
	case !c.tlsConfigured() && !c.Insecure:
		bad("internal TLS is not configured: set --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-client-ca (CAIRN_TLS_CLIENT_CA) " +
			"(make them with `cairnctl certs`, see docs/security-tls.md), or --insecure (CAIRN_INSECURE) for a cluster entirely on loopback")
	case c.Insecure && !c.tlsConfigured():
		settings := []loopback.Setting{
			{Flag: "--grpc-addr (CAIRN_GRPC_ADDR)", Value: c.GRPCAddr},
			{Flag: "--ops-addr (CAIRN_OPS_ADDR)", Value: c.OpsAddr},
			{Flag: "--advertise-addr (CAIRN_ADVERTISE_ADDR)", Value: c.AdvertiseAddr},
		}
		for _, ep := range c.EtcdEndpoints {
			settings = append(settings, loopback.Setting{Flag: "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)", Value: ep, Kind: loopback.KindURL})
		}
		for _, h := range databaseHosts(c.DatabaseURL) {
			settings = append(settings, loopback.Setting{Flag: "--database-url (CAIRN_DATABASE_URL) host", Value: h, Kind: loopback.KindHost})
		}
		if err := loopback.Check(settings); err != nil {
			bad("--insecure (CAIRN_INSECURE) is accepted only when every listen and peer address is on loopback (%v); "+
				"configure internal TLS instead: --tls-cert, --tls-key and --tls-client-ca (docs/security-tls.md)", err)
		}
	}
	if c.tlsConfigured() {
		if c.Insecure {
			bad("--insecure (CAIRN_INSECURE) and --tls-cert/--tls-key/--tls-client-ca exclude each other: drop one")
		}
		var missing []string
		for _, f := range []struct{ flag, env, v string }{
			{"--tls-cert", "CAIRN_TLS_CERT", c.TLSCert}, {"--tls-key", "CAIRN_TLS_KEY", c.TLSKey},
			{"--tls-client-ca", "CAIRN_TLS_CLIENT_CA", c.TLSClientCA},
		} {
			if f.v == "" {
				missing = append(missing, f.flag+" ("+f.env+")")
			}
		}
		if len(missing) > 0 {
			bad("internal TLS needs all of --tls-cert, --tls-key and --tls-client-ca; missing %s", strings.Join(missing, ", "))
		}
	}
	return errs
}

// databaseHosts are the hosts a PostgreSQL URL connects to (unix socket directories
// included); none when the URL does not parse (reported elsewhere).
func databaseHosts(u string) []string {
	pc, err := pgconn.ParseConfig(u)
	if err != nil {
		return nil
	}
	hosts := []string{pc.Host}
	for _, f := range pc.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	return hosts
}
