package executor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-io/cairn/pkg/egress"
)

// Executor runs one attempt of a task and reports how it ended. Execute never panics and
// never returns nil; it returns when the attempt is over and, for shell tasks, when no process
// of the attempt's process group is left.
type Executor interface {
	Execute(ctx context.Context, a *Attempt) *Result
}

// Type names an executor.
type Type string

// The executors Cairn ships.
const (
	TypeShell Type = "shell"
	TypeHTTP  Type = "http"
	TypeNoop  Type = "noop"
)

// Attempt is one execution of one task of one run. Everything in it is concrete: templates
// were rendered before it was built.
type Attempt struct {
	RunID  string
	TaskID string
	// Number counts the task's attempts from 1.
	Number int
	// IdempotencyKey is stable across the attempts of one task in one run. Shell tasks see it
	// as CAIRN_IDEMPOTENCY_KEY, HTTP tasks send it as Idempotency-Key (unless the task sets
	// that header itself). Empty: neither is set.
	IdempotencyKey string
	// Timeout bounds this attempt (0: only ctx bounds it). When it expires the result is a
	// Timeout failure; when ctx ends first the result is Cancelled.
	Timeout time.Duration
	Spec    Spec
	// Redact, if set, masks the secret values the spec was given in the Result's Output and
	// Error before Execute returns (see Redactor).
	Redact Redactor
}

// Spec is what to run. Exactly the field matching Type is set (none for noop).
type Spec struct {
	Type  Type
	Shell *ShellSpec
	HTTP  *HTTPSpec
}

// ShellSpec is a process to start: exactly one of Argv and Script is set.
type ShellSpec struct {
	// Argv is run directly, never through a shell: Argv[0] is looked up on the child's PATH
	// unless it contains a '/', and no element is split or expanded.
	Argv []string
	// Script is run with /bin/sh -c.
	Script string
	// Env is added to the base environment (see Config.BaseEnv). The CAIRN_* variables the
	// executor sets are reserved.
	Env map[string]string
	// Workdir is an absolute directory inside one of Config.AllowedWorkdirRoots. Empty: a
	// fresh, private scratch directory, removed when the attempt ends.
	Workdir string
}

// HTTPSpec is one HTTP request.
type HTTPSpec struct {
	Method  string // default GET
	URL     string // absolute http:// or https://
	Headers map[string]string
	Body    string
	// ExpectStatus lists the statuses that mean success; empty means any 2xx.
	ExpectStatus []int
}

// FailureKind says why an attempt failed.
type FailureKind int

// Failure kinds. Their String forms are stable and meant to be stored.
const (
	FailureNone FailureKind = iota
	// FailureTimeout: the attempt's own Timeout expired; the work was stopped.
	FailureTimeout
	// FailureExitCode: the process ended unsuccessfully: a non-zero exit code, or killed by a
	// signal nobody in Cairn sent (then ExitCode is -1 and Error names the signal).
	FailureExitCode
	// FailureUnexpectedStatus: the server answered with a status outside ExpectStatus, or
	// kept redirecting past Config.MaxRedirects.
	FailureUnexpectedStatus
	// FailureConnection: the HTTP exchange failed below HTTP: DNS, connect (refused, reset),
	// TLS, or the connection broke before the whole answer was read.
	FailureConnection
	// FailureCancelled: ctx ended (Error and Err carry context.Cause(ctx)); the work was
	// stopped.
	FailureCancelled
	// FailureInternal: the attempt could not be run as specified: an invalid spec or
	// attempt, a workdir outside the allowed roots or missing, an executable not found or not
	// startable, a bad environment variable, an HTTP destination the egress policy refuses, a
	// panic in the executor. Err wraps one of the sentinel errors (ErrInvalidSpec, ErrWorkdir,
	// exec.ErrNotFound, ErrEgressDenied, ErrPanic, …). Retrying rarely helps; when it cannot
	// help at all, Result.NoRetry says so.
	FailureInternal
)

var failureNames = [...]string{
	FailureNone:             "none",
	FailureTimeout:          "timeout",
	FailureExitCode:         "exit_code",
	FailureUnexpectedStatus: "unexpected_status",
	FailureConnection:       "connection",
	FailureCancelled:        "cancelled",
	FailureInternal:         "internal",
}

func (k FailureKind) String() string {
	if k >= 0 && int(k) < len(failureNames) {
		return failureNames[k]
	}
	return fmt.Sprintf("FailureKind(%d)", int(k))
}

// ParseFailureKind is the inverse of FailureKind.String.
func ParseFailureKind(s string) (FailureKind, error) {
	for k, name := range failureNames {
		if name == s {
			return FailureKind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown failure kind %q (want one of %s)", s, strings.Join(failureNames[:], ", "))
}

// Result is how an attempt ended.
type Result struct {
	Succeeded bool
	Failure   FailureKind // FailureNone iff Succeeded
	// ExitCode is the process's exit code; -1 when there is none (HTTP, noop, not started,
	// killed by a signal).
	ExitCode int
	// HTTPStatus is the final response's status; 0 when there is none.
	HTTPStatus int
	// Output is the combined stdout and stderr of a shell task (its last Config.OutputCap
	// bytes) or the response body of an HTTP task (its first Config.OutputCap bytes), or the
	// stack of a panic. Raw bytes, not necessarily UTF-8.
	Output []byte
	// OutputTruncated says bytes were dropped to respect the cap.
	OutputTruncated bool
	// NoRetry says the failure would recur on every attempt, so the task must fail without
	// using its retries: set only when the egress policy refused an HTTP destination (the
	// worker's configuration has to change, not the attempt's luck).
	NoRetry bool
	// Error explains a failure for people (empty on success); it is Err.Error().
	Error string
	// Err is the failure as an error for errors.Is/As within the process (not serialised):
	// it wraps ErrTimeout, the cancellation cause, ErrWorkdir, exec.ErrNotFound, …
	Err               error
	Started, Finished time.Time
}

// Sentinel errors wrapped by Result.Err.
var (
	// ErrTimeout is the cause of a per-attempt timeout.
	ErrTimeout = errors.New("attempt timed out")
	// ErrInvalidSpec: the attempt or its spec is malformed.
	ErrInvalidSpec = errors.New("invalid task spec")
	// ErrWorkdir: the working directory is not allowed or not usable.
	ErrWorkdir = errors.New("working directory rejected")
	// ErrInvalidEnv: an environment variable is malformed or reserved.
	ErrInvalidEnv = errors.New("invalid environment variable")
	// ErrExitCode: the process ended unsuccessfully.
	ErrExitCode = errors.New("process failed")
	// ErrUnexpectedStatus: the HTTP status is not one of ExpectStatus.
	ErrUnexpectedStatus = errors.New("unexpected HTTP status")
	// ErrTooManyRedirects: the server redirected more than Config.MaxRedirects times.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrPanic: the executor panicked.
	ErrPanic = errors.New("executor panicked")
	// ErrEgressDenied: the egress policy refused an HTTP task's destination (the URL, a
	// redirect or an address its host resolved to). Err also matches *egress.DeniedError
	// with errors.As when the refusal names a rule.
	ErrEgressDenied = egress.ErrDenied
)

// Defaults applied by New to zero Config fields.
const (
	DefaultOutputCap    = 64 << 10
	DefaultKillGrace    = 5 * time.Second
	DefaultMaxRedirects = 5
	// NoRedirects as Config.MaxRedirects makes HTTP tasks not follow redirects: the 3xx
	// response is the result, checked against ExpectStatus like any other.
	NoRedirects = -1
)

// Config configures the executors. The zero value is usable: no task may choose a workdir,
// defaults for the rest.
type Config struct {
	// AllowedWorkdirRoots are absolute directories; a shell task's Workdir must resolve
	// (symlinks included) to one of them or below. Empty: no task may set a Workdir
	// (deny by default); tasks without one run in a scratch directory.
	AllowedWorkdirRoots []string
	// ScratchDir is where per-attempt scratch directories are created (default os.TempDir()).
	ScratchDir string
	// OutputCap is the number of output bytes kept per attempt (default DefaultOutputCap).
	OutputCap int
	// KillGrace is how long a shell task's process group has between SIGTERM and SIGKILL
	// (default DefaultKillGrace).
	KillGrace time.Duration
	// MaxRedirects bounds the redirects an HTTP task follows (default DefaultMaxRedirects;
	// NoRedirects to follow none).
	MaxRedirects int
	// EgressAllow lists the CIDRs HTTP tasks may connect to although the egress policy
	// blocks them by default (loopback, link-local, private, …; see package egress). Each
	// opens exactly its range. Empty: the default policy, nothing opened.
	EgressAllow []netip.Prefix
	// HTTPTransport sends HTTP tasks' requests (default: NewHTTPTransport with the policy of
	// EgressAllow, shared by all attempts for connection reuse). A transport given here
	// replaces the dial-time egress check; the URL and every redirect target are still
	// refused when their literal host is blocked. For tests and embedding.
	HTTPTransport http.RoundTripper
	// BaseEnv is the environment every shell task starts from, as KEY=VALUE. nil: the
	// worker's PATH, HOME, LANG and TMPDIR, nothing else (DefaultBaseEnv). A non-nil empty
	// slice: nothing at all.
	BaseEnv []string
	// TaskCredential, when set, runs shell tasks as this operating-system user and group
	// (the worker must be allowed to switch: root, or CAP_SETUID/CAP_SETGID), so that a task
	// cannot read what only the worker's user may (its TLS key). Scratch directories are
	// handed to that user. nil: tasks run as the worker's user.
	TaskCredential *syscall.Credential
}

// runner is one executor type. It fills in res; the Dispatcher sets the times, recovers panics
// and normalises the result.
type runner interface {
	run(ctx context.Context, a *Attempt, res *Result)
}

// Dispatcher is the Executor that routes each attempt to the executor its Spec.Type names.
// It is safe for concurrent use.
type Dispatcher struct {
	runners map[Type]runner
}

var _ Executor = (*Dispatcher)(nil)

// New checks cfg, applies its defaults and returns the Dispatcher for shell, http and noop.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.OutputCap < 0 {
		return nil, fmt.Errorf("executor config: OutputCap must be ≥ 0, got %d", cfg.OutputCap)
	}
	if cfg.OutputCap == 0 {
		cfg.OutputCap = DefaultOutputCap
	}
	if cfg.KillGrace < 0 {
		return nil, fmt.Errorf("executor config: KillGrace must be ≥ 0, got %s", cfg.KillGrace)
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.MaxRedirects < NoRedirects {
		return nil, fmt.Errorf("executor config: MaxRedirects must be ≥ 0 or NoRedirects (-1), got %d", cfg.MaxRedirects)
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	roots := make([]string, 0, len(cfg.AllowedWorkdirRoots))
	for _, r := range cfg.AllowedWorkdirRoots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("executor config: allowed workdir root %q is not an absolute path", r)
		}
		roots = append(roots, filepath.Clean(r))
	}
	cfg.AllowedWorkdirRoots = roots
	if cfg.ScratchDir != "" && !filepath.IsAbs(cfg.ScratchDir) {
		return nil, fmt.Errorf("executor config: ScratchDir %q is not an absolute path", cfg.ScratchDir)
	}
	if cfg.BaseEnv == nil {
		cfg.BaseEnv = DefaultBaseEnv()
	}
	for _, kv := range cfg.BaseEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("executor config: BaseEnv entry %q is not KEY=VALUE", kv)
		}
		if err := checkEnvVar(k, v); err != nil {
			return nil, fmt.Errorf("executor config: BaseEnv: %w", err)
		}
	}
	policy, err := egress.NewPolicy(cfg.EgressAllow)
	if err != nil {
		return nil, fmt.Errorf("executor config: EgressAllow: %w", err)
	}
	return &Dispatcher{runners: map[Type]runner{
		TypeShell: newShell(cfg),
		TypeHTTP:  newHTTP(cfg, policy),
		TypeNoop:  noop{},
	}}, nil
}

// Execute runs a and returns its result; see Executor.
func (d *Dispatcher) Execute(ctx context.Context, a *Attempt) (res *Result) {
	res = &Result{ExitCode: -1, Started: time.Now()}
	defer func() {
		if p := recover(); p != nil {
			*res = Result{ExitCode: -1, Started: res.Started, Output: debug.Stack()}
			res.fail(FailureInternal, fmt.Errorf("%w: %v", ErrPanic, p))
		}
		res.Finished = time.Now()
		res.Succeeded = res.Failure == FailureNone && res.Err == nil
		if res.Err != nil {
			res.Error = res.Err.Error()
		}
		a.redact(res)
	}()
	if err := a.Validate(); err != nil {
		res.fail(FailureInternal, err)
		return res
	}
	ctx, cancel := attemptContext(ctx, a.Timeout)
	defer cancel()
	if ctx.Err() != nil {
		res.failContext(ctx, a.Timeout)
		return res
	}
	d.runners[a.Spec.Type].run(ctx, a, res)
	return res
}

// attemptContext bounds ctx by the attempt's timeout, with ErrTimeout as its cause.
func attemptContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	}
	return context.WithCancel(ctx)
}

func (r *Result) fail(kind FailureKind, err error) {
	r.Failure, r.Err = kind, err
}

// failContext records why ctx (an attemptContext) ended: Timeout if the attempt's own timeout
// fired first, Cancelled with the cause otherwise.
func (r *Result) failContext(ctx context.Context, timeout time.Duration) {
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrTimeout) {
		r.fail(FailureTimeout, fmt.Errorf("%w after %s", ErrTimeout, timeout))
		return
	}
	r.fail(FailureCancelled, fmt.Errorf("attempt cancelled: %w", cause))
}

// Validate checks the attempt and its spec (not the workdir policy, which needs a Config).
func (a *Attempt) Validate() error {
	if a == nil {
		return fmt.Errorf("%w: nil attempt", ErrInvalidSpec)
	}
	if a.Number < 1 {
		return fmt.Errorf("%w: attempt number must be ≥ 1, got %d", ErrInvalidSpec, a.Number)
	}
	if a.Timeout < 0 {
		return fmt.Errorf("%w: timeout must be ≥ 0, got %s", ErrInvalidSpec, a.Timeout)
	}
	return a.Spec.Validate()
}

// Validate checks that the spec is complete and consistent with its Type.
func (s *Spec) Validate() error {
	switch s.Type {
	case TypeShell:
		if s.HTTP != nil {
			return fmt.Errorf("%w: shell task has an http spec", ErrInvalidSpec)
		}
		return s.Shell.validate()
	case TypeHTTP:
		if s.Shell != nil {
			return fmt.Errorf("%w: http task has a shell spec", ErrInvalidSpec)
		}
		return s.HTTP.validate()
	case TypeNoop:
		if s.Shell != nil || s.HTTP != nil {
			return fmt.Errorf("%w: noop task has a shell or http spec", ErrInvalidSpec)
		}
		return nil
	case "":
		return fmt.Errorf("%w: type is empty (want shell, http or noop)", ErrInvalidSpec)
	default:
		return fmt.Errorf("%w: unknown type %q (want shell, http or noop)", ErrInvalidSpec, s.Type)
	}
}

// noop completes at once.
type noop struct{}

func (noop) run(context.Context, *Attempt, *Result) {}
