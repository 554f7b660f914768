package worker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/cairn-io/cairn/pkg/egress"
	"github.com/cairn-io/cairn/pkg/envflag"
	"github.com/cairn-io/cairn/pkg/etcdclient"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/loopback"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// Version is the worker's version, reported in its hello and its etcd registration. Release
// builds set it with -ldflags "-X github.com/cairn-io/cairn/services/worker/internal/worker.Version=…".
var Version = "dev"

// ErrInvalidConfig is matched by every configuration error.
var ErrInvalidConfig = errors.New("worker: invalid configuration")

// Defaults of the settings.
const (
	DefaultEtcdEndpoint = "http://127.0.0.1:2379"
	DefaultConcurrency  = 4
	DefaultPool         = "default"
	DefaultLeaseTTL     = 10 * time.Second
	DefaultDrainTimeout = 30 * time.Second
	DefaultOpsAddr      = "127.0.0.1:9092"
	DefaultHeartbeat    = 3 * time.Second
	// DefaultSchedulerServerName is the name verified in the leader's certificate.
	DefaultSchedulerServerName = "cairn-scheduler"
	MaxConcurrency             = 1024
	minHeartbeatInterval       = 100 * time.Millisecond
)

// Config is everything Run needs. ParseFlags fills it from flags and CAIRN_* variables; tests
// build it directly (zero fields take the defaults above, see withDefaults).
type Config struct {
	EtcdEndpoints []string
	Etcd          etcdclient.Security // TLS and authentication towards etcd
	EtcdPrefix    string              // default "/cairn/"
	// ID is the worker's id and etcd key; default "<hostname>-<pid>". A stable id (the pod
	// name, say) lets a restarted worker be recognised, but it must wait for the previous
	// incarnation's lease to expire before it registers again.
	ID          string
	Concurrency int
	Pool        string
	Labels      map[string]string
	LeaseTTL    time.Duration
	// DrainTimeout bounds how long a draining worker waits for its running attempts before it
	// cancels them (and then, for at least a second more, for their results' acknowledgement).
	DrainTimeout time.Duration
	// OpsAddr is where /healthz, /readyz and /metrics are served; "" disables the ops server.
	OpsAddr string
	// AdvertiseAddr is the address shown to operators (etcd registration, hello); default the
	// bound ops address with an unspecified host replaced by the hostname.
	AdvertiseAddr string
	// WorkdirRoots are the directories shell tasks may use as their workdir (none by default).
	WorkdirRoots []string
	// EgressAllow lists the CIDRs HTTP tasks may connect to although the egress policy blocks
	// them by default (loopback, link-local, private, …; see pkg/egress). Each opens exactly
	// its range.
	EgressAllow []netip.Prefix
	// OutputCap is the number of output bytes kept per attempt (default executor.DefaultOutputCap).
	OutputCap int
	// KillGrace is the time between SIGTERM and SIGKILL for a stopped attempt's processes
	// (default executor.DefaultKillGrace).
	KillGrace    time.Duration
	LogFormat    string // text | json
	LogLevel     string // debug | info | warn | error
	OTLPEndpoint string

	// TLSCert and TLSKey are the worker's client certificate towards the leader
	// (spiffe://cairn/worker/<id>: its name is the worker id) and key; TLSCA is the CA the
	// leader's certificate must chain to. All three, or Insecure.
	TLSCert, TLSKey, TLSCA string
	// SchedulerServerName is the name the leader's certificate must carry, whatever address
	// etcd publishes (default DefaultSchedulerServerName).
	SchedulerServerName string
	// Insecure connects to the leader in plaintext without a certificate (loopback only).
	Insecure bool
	// TaskUser runs shell tasks as this operating-system user (a name or a numeric uid), so
	// that they cannot read the worker's key and certificate. Required when the worker runs
	// as root (unless Insecure); "root" names that choice explicitly. Switching users needs
	// the worker to run as root.
	TaskUser string

	// The rest is for tests and embedding; flags do not set it.

	// Logger overrides LogFormat/LogLevel.
	Logger *slog.Logger
	// LogOutput is where the logger writes (default os.Stderr).
	LogOutput io.Writer
	// ReconnectMin and ReconnectMax bound the reconnect backoff (default 100ms and 5s).
	ReconnectMin, ReconnectMax time.Duration
	// ScratchRoot holds the per-attempt scratch directories of shell tasks without a workdir
	// (default $TMPDIR/cairn-worker-<id>). Leftovers of an earlier incarnation of this worker
	// id (killed before it could clean up) are removed once this one has registered.
	ScratchRoot string
	// Heartbeat is the heartbeat interval until the leader's welcome sets one (default 3s).
	Heartbeat time.Duration
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ParseFlags parses args (without the program name) and the CAIRN_* environment read through
// lookupEnv (os.LookupEnv when nil). --help prints the usage to usage and returns
// flag.ErrHelp.
func ParseFlags(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, error) {
	var (
		c                                      Config
		labels                                 []string
		leaseTTL, drainTimeout, killGrace      envflag.Duration
		endpoints                              []string
		prefix, id, pool, ops, advertise       string
		concurrency, outputCap                 int
		logFormat, logLevel, otlp, workdirRoot string
		egressAllow                            string
	)
	fs := envflag.New("cairn-worker", "cairn-worker executes the shell, http and noop tasks the Cairn leader assigns to it.")
	if lookupEnv != nil {
		fs.SetLookupEnv(lookupEnv)
	}
	if usage != nil {
		fs.FlagSet().SetOutput(usage)
	}
	fs.List(&endpoints, "etcd-endpoints", "CAIRN_ETCD_ENDPOINTS", []string{DefaultEtcdEndpoint}, "etcd client URLs, comma-separated")
	fs.String(&prefix, "etcd-prefix", "CAIRN_ETCD_PREFIX", membership.DefaultPrefix, "etcd key prefix of every Cairn key (ends with /)")
	var etcdSec etcdclient.Security
	etcdFlags := etcdclient.AddFlags(fs, &etcdSec)
	fs.String(&id, "id", "CAIRN_WORKER_ID", "", "worker id and etcd key (default <hostname>-<pid>; a stable id must wait for its previous lease to expire)")
	fs.Int(&concurrency, "concurrency", "CAIRN_WORKER_CONCURRENCY", DefaultConcurrency, "number of attempts run at the same time (slots)")
	fs.String(&pool, "pool", "CAIRN_WORKER_POOL", DefaultPool, "worker pool served")
	fs.List(&labels, "labels", "CAIRN_WORKER_LABELS", nil, "labels as key=value, comma-separated")
	fs.Duration(&leaseTTL, "lease-ttl", "CAIRN_LEASE_TTL", envflag.Duration(DefaultLeaseTTL), "TTL of the etcd lease behind the registration (1s to 5m, whole seconds)")
	fs.Duration(&drainTimeout, "drain-timeout", "CAIRN_DRAIN_TIMEOUT", envflag.Duration(DefaultDrainTimeout), "on SIGTERM or a leader's drain: how long running attempts may finish before they are cancelled")
	fs.String(&ops, "ops-addr", "CAIRN_OPS_ADDR", DefaultOpsAddr, "listen address of /healthz, /readyz and /metrics (empty: none)")
	fs.String(&advertise, "advertise-addr", "CAIRN_WORKER_ADVERTISE_ADDR", "", "address shown to operators (default: the ops address, hostname for an unspecified host)")
	fs.String(&workdirRoot, "workdir-roots", "CAIRN_WORKDIR_ROOTS", "", "absolute directories shell tasks may use as workdir, comma-separated (default none: tasks run in a scratch directory)")
	fs.String(&egressAllow, "egress-allow", "CAIRN_EGRESS_ALLOW", "", "CIDRs HTTP tasks may call although blocked by default (loopback, link-local incl. 169.254.169.254, private, unique-local…), comma-separated (default none)")
	fs.Int(&outputCap, "output-cap", "CAIRN_OUTPUT_CAP", executor.DefaultOutputCap, "output bytes kept per attempt")
	fs.Duration(&killGrace, "kill-grace", "CAIRN_KILL_GRACE", envflag.Duration(executor.DefaultKillGrace), "time between SIGTERM and SIGKILL of a stopped attempt's processes")
	fs.String(&logFormat, "log-format", "CAIRN_LOG_FORMAT", "text", "log format: text or json")
	fs.String(&logLevel, "log-level", "CAIRN_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	fs.String(&otlp, "otlp-endpoint", "CAIRN_OTLP_ENDPOINT", "", "OTLP/gRPC trace endpoint (host:port or http(s)://host:port; empty: traces not exported)")
	var tlsCert, tlsKey, tlsCA, serverName string
	var insecureMode bool
	var taskUser string
	fs.String(&taskUser, "task-user", "CAIRN_TASK_USER", "", "run shell tasks as this OS user (name or uid), so they cannot read the worker's key; required when the worker runs as root")
	fs.String(&tlsCert, "tls-cert", "CAIRN_TLS_CERT", "", "client certificate towards the leader (spiffe://cairn/worker/<id>; its name is the default --id)")
	fs.String(&tlsKey, "tls-key", "CAIRN_TLS_KEY", "", "key of --tls-cert (mode 0600, owned by the worker's user)")
	fs.String(&tlsCA, "tls-ca", "CAIRN_TLS_CA", "", "CA file the leader's certificate must chain to")
	fs.String(&serverName, "scheduler-server-name", "CAIRN_SCHEDULER_SERVER_NAME", DefaultSchedulerServerName,
		"the name the leader's certificate must carry, whatever address etcd publishes")
	fs.Bool(&insecureMode, "insecure", "CAIRN_INSECURE", false, "connect to the leader in plaintext without a certificate; only accepted when every address is on loopback")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q (the worker takes flags only)", ErrInvalidConfig, rest)
	}
	if err := etcdFlags.Finish(lookupEnv); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	lbl, lerr := ParseLabels(labels)
	allow, eerr := egress.ParseAllowList(egressAllow)
	if eerr != nil {
		eerr = fmt.Errorf("%w: --egress-allow (CAIRN_EGRESS_ALLOW): %v", ErrInvalidConfig, eerr)
	}
	c = Config{
		EtcdEndpoints: endpoints, Etcd: etcdSec, EtcdPrefix: prefix, ID: id, Concurrency: concurrency, Pool: pool,
		Labels: lbl, LeaseTTL: leaseTTL.D(), DrainTimeout: drainTimeout.D(), OpsAddr: ops,
		AdvertiseAddr: advertise, WorkdirRoots: splitList(workdirRoot), EgressAllow: allow, OutputCap: outputCap,
		KillGrace: killGrace.D(), LogFormat: logFormat, LogLevel: logLevel, OTLPEndpoint: otlp,
		TLSCert: tlsCert, TLSKey: tlsKey, TLSCA: tlsCA, SchedulerServerName: serverName, Insecure: insecureMode,
		TaskUser: taskUser,
	}
	if c.ID == "" && c.TLSCert != "" {
		// The certificate says who this worker is.
		if id, err := certIdentity(c.TLSCert); err == nil && id.Role == tlsconf.RoleWorker {
			c.ID = id.Name
		}
	}
	if c.ID == "" {
		c.ID = DefaultID()
	}
	var cerr error
	if concurrency == 0 { // Validate takes 0 for "the default"; on the command line it is a mistake
		cerr = fmt.Errorf("%w: --concurrency %d must be between 1 and %d", ErrInvalidConfig, concurrency, MaxConcurrency)
	}
	return c, errors.Join(lerr, eerr, cerr, c.Validate())
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseLabels turns key=value entries into a map; an entry without "=", with an empty key or
// a key given twice is an error naming it.
func ParseLabels(entries []string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: label %q is not key=value", ErrInvalidConfig, e))
		case k == "":
			errs = append(errs, fmt.Errorf("%w: label %q has an empty key", ErrInvalidConfig, e))
		default:
			if _, dup := out[k]; dup {
				errs = append(errs, fmt.Errorf("%w: label %q is given twice", ErrInvalidConfig, k))
			}
			out[k] = v
		}
	}
	return out, errors.Join(errs...)
}

// DefaultID is "<hostname>-<pid>", with characters an id may not hold replaced by "-".
func DefaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	id := []byte(fmt.Sprintf("%s-%d", host, os.Getpid()))
	for i, b := range id {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			id[i] = '-'
		}
	}
	if len(id) > 128 {
		id = id[len(id)-128:]
	}
	if id[0] == '-' || id[0] == '.' || id[0] == '_' || id[0] == ':' {
		id[0] = 'w'
	}
	return string(id)
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if len(c.EtcdEndpoints) == 0 {
		c.EtcdEndpoints = []string{DefaultEtcdEndpoint}
	}
	if c.EtcdPrefix == "" {
		c.EtcdPrefix = membership.DefaultPrefix
	}
	if c.ID == "" {
		c.ID = DefaultID()
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Pool == "" {
		c.Pool = DefaultPool
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ScratchRoot == "" {
		c.ScratchRoot = filepath.Join(os.TempDir(), "cairn-worker-"+c.ID)
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 100 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 5 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.SchedulerServerName == "" {
		c.SchedulerServerName = DefaultSchedulerServerName
	}
	return c
}

func (c Config) internalTLS() bool { return c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" }

func certIdentity(file string) (tlsconf.Identity, error) {
	cert, err := tlsconf.ReadCertFile(file)
	if err != nil {
		return tlsconf.Identity{}, err
	}
	return tlsconf.IdentityFromCert(cert)
}

// validateTLS checks the internal TLS settings: all three files, a worker certificate whose
// name is the worker id.
func (c Config) validateTLS(bad func(string, ...any)) {
	if !c.internalTLS() {
		if !c.Insecure {
			bad("internal TLS is not configured: set --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-ca (CAIRN_TLS_CA) " +
				"(a worker certificate naming this worker: `cairnctl certs issue --role worker --name <id>`, docs/security-tls.md), " +
				"or --insecure (CAIRN_INSECURE) for a cluster entirely on loopback")
			return
		}
		settings := []loopback.Setting{
			{Flag: "--ops-addr (CAIRN_OPS_ADDR)", Value: c.OpsAddr},
			{Flag: "--advertise-addr (CAIRN_WORKER_ADVERTISE_ADDR)", Value: c.AdvertiseAddr},
		}
		for _, ep := range c.EtcdEndpoints {
			settings = append(settings, loopback.Setting{Flag: "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)", Value: ep, Kind: loopback.KindURL})
		}
		if err := loopback.Check(settings); err != nil {
			bad("--insecure (CAIRN_INSECURE) is accepted only when every listen and peer address is on loopback (%v); "+
				"configure internal TLS instead: --tls-cert, --tls-key and --tls-ca (docs/security-tls.md)", err)
		}
		return
	}
	if c.Insecure {
		bad("--insecure (CAIRN_INSECURE) and --tls-cert/--tls-key/--tls-ca exclude each other: drop one")
	}
	if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
		bad("internal TLS needs all of --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-ca (CAIRN_TLS_CA)")
		return
	}
	id, err := certIdentity(c.TLSCert)
	switch {
	case err != nil:
		bad("--tls-cert %s: %v", c.TLSCert, err)
	case id.Role != tlsconf.RoleWorker:
		bad("--tls-cert %s names %s, not a worker (spiffe://cairn/worker/<id>)", c.TLSCert, id)
	case id.Name != c.ID:
		bad("--id %q is not the worker named by --tls-cert (%s): a worker is who its certificate says; drop --id or issue a certificate for %q",
			c.ID, id, c.ID)
	}
}

// taskIdentity is the user shell tasks run as.
type taskIdentity struct {
	cred *syscall.Credential // nil: the worker's own user
	name string
	home string
}

// taskUser resolves TaskUser and applies the root rule: a worker running as root must be
// told whom to run tasks as (--task-user), except in insecure (loopback dev) mode.
func (c Config) taskUser() (taskIdentity, error) {
	euid := os.Geteuid()
	if c.TaskUser == "" {
		if euid == 0 && !c.Insecure {
			return taskIdentity{}, errors.New("the worker runs as root, so its shell tasks would too, and could read its key: " +
				"set --task-user (CAIRN_TASK_USER) to an unprivileged user (e.g. nobody), or to root to accept that explicitly")
		}
		return taskIdentity{}, nil
	}
	u, err := user.Lookup(c.TaskUser)
	if err != nil {
		if _, nerr := strconv.Atoi(c.TaskUser); nerr == nil {
			u, err = user.LookupId(c.TaskUser)
		}
	}
	if err != nil {
		return taskIdentity{}, fmt.Errorf("--task-user (CAIRN_TASK_USER) %q: %v", c.TaskUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return taskIdentity{}, fmt.Errorf("--task-user (CAIRN_TASK_USER) %q: %v", c.TaskUser, err)
	}
	id := taskIdentity{name: u.Username, home: u.HomeDir}
	if int(uid) == euid {
		return id, nil // already that user: nothing to switch
	}
	if euid != 0 {
		return taskIdentity{}, fmt.Errorf("--task-user (CAIRN_TASK_USER) %q: running tasks as another user needs the worker to run as root (it runs as uid %d)", c.TaskUser, euid)
	}
	// Only the task user's own groups: never the worker's supplementary groups.
	groups := []uint32{}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && n != gid {
				groups = append(groups, uint32(n))
			}
		}
	}
	id.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	return id, nil
}

// leaderCredentials is the mutual TLS towards the leader; nil in insecure mode.
func (c Config) leaderCredentials() (credentials.TransportCredentials, error) {
	if !c.internalTLS() {
		return nil, nil
	}
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: c.TLSCA, CertFile: c.TLSCert, KeyFile: c.TLSKey,
		ServerName: c.SchedulerServerName, ServerRole: tlsconf.RoleScheduler, MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return credentials.NewTLS(tc), nil
}

// Validate reports every problem of c (after defaults), each naming its setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	for _, e := range c.EtcdEndpoints {
		if strings.TrimSpace(e) == "" {
			bad("--etcd-endpoints has an empty entry")
		}
	}
	if err := c.Etcd.Validate(c.EtcdEndpoints); err != nil {
		bad("%v", err)
	}
	if !strings.HasSuffix(c.EtcdPrefix, "/") {
		bad("--etcd-prefix %q must end with \"/\"", c.EtcdPrefix)
	}
	if !idPattern.MatchString(c.ID) {
		bad("--id %q must match %s", c.ID, idPattern)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		bad("--concurrency %d must be between 1 and %d", c.Concurrency, MaxConcurrency)
	}
	if strings.TrimSpace(c.Pool) == "" {
		bad("--pool is empty")
	}
	for k := range c.Labels {
		if k == "" {
			bad("--labels has an empty key")
		}
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > membership.MaxTTL {
		bad("--lease-ttl %v must be between 1s and %v", c.LeaseTTL, membership.MaxTTL)
	}
	if c.DrainTimeout < 0 {
		bad("--drain-timeout %v is negative", c.DrainTimeout)
	}
	if c.OpsAddr != "" {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			bad("--ops-addr %q: %v", c.OpsAddr, err)
		}
	}
	for _, r := range c.WorkdirRoots {
		if !strings.HasPrefix(r, "/") {
			bad("--workdir-roots entry %q is not an absolute path", r)
		}
	}
	if _, err := egress.NewPolicy(c.EgressAllow); err != nil {
		bad("--egress-allow: %v", err)
	}
	if c.OutputCap < 0 {
		bad("--output-cap %d is negative", c.OutputCap)
	}
	if c.KillGrace < 0 {
		bad("--kill-grace %v is negative", c.KillGrace)
	}
	switch strings.ToLower(c.LogFormat) {
	case "text", "json":
	default:
		bad("--log-format %q must be text or json", c.LogFormat)
	}
	if c.LogLevel != "" {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
			bad("--log-level %q must be debug, info, warn or error", c.LogLevel)
		}
	}
	if c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin {
		bad("reconnect backoff %v..%v must be positive and ordered", c.ReconnectMin, c.ReconnectMax)
	}
	if c.Heartbeat < minHeartbeatInterval {
		bad("heartbeat interval %v must be at least %v", c.Heartbeat, minHeartbeatInterval)
	}
	c.validateTLS(bad)
	if _, err := c.taskUser(); err != nil {
		bad("%v", err)
	}
	return errors.Join(errs...)
}
