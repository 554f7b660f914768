package opsserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/cairn-io/cairn/pkg/lifecycle"
)

const (
	// DefaultCheckTimeout bounds each readiness check.
	DefaultCheckTimeout = 2 * time.Second
	// DefaultShutdownTimeout bounds the graceful part of Stop.
	DefaultShutdownTimeout = 5 * time.Second
)

// ErrInvalid is matched by every configuration and check-registration error.
var ErrInvalid = errors.New("opsserver: invalid input")

var checkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Check is a readiness check: nil when the dependency is usable. It must respect ctx, which
// carries the check's timeout.
type Check func(ctx context.Context) error

// Config configures a Server.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:9090" (port 0 picks a free port). Required.
	Addr string
	// Metrics is served at /metrics (usually telemetry.Telemetry.Handler()); nil leaves
	// /metrics unmounted.
	Metrics http.Handler
	// Pprof mounts net/http/pprof under /debug/pprof/.
	Pprof bool
	// CheckTimeout bounds each readiness check; zero means DefaultCheckTimeout.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown in Stop; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives serving errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the ops HTTP server. It implements lifecycle.Service.
type Server struct {
	lifecycle.StartStop

	cfg     Config
	log     *slog.Logger
	handler http.Handler

	mu     sync.Mutex
	checks map[string]Check
	addr   net.Addr
}

var _ lifecycle.Service = (*Server)(nil)

// New checks cfg and builds the server; Start begins serving.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Addr == "" {
		errs = append(errs, fmt.Errorf("%w: Addr is empty", ErrInvalid))
	} else if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("%w: Addr %q: %v", ErrInvalid, cfg.Addr, err))
	}
	if cfg.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: CheckTimeout %v is negative", ErrInvalid, cfg.CheckTimeout))
	}
	if cfg.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: ShutdownTimeout %v is negative", ErrInvalid, cfg.ShutdownTimeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.CheckTimeout = cmp.Or(cfg.CheckTimeout, DefaultCheckTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With(slog.String("component", "opsserver")), checks: map[string]Check{}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.handler = mux
	return s, nil
}

// AddCheck registers a readiness check under name (lower-case letters, digits, "_", ".",
// "-"). Names are unique. Checks may be added while the server runs.
func (s *Server) AddCheck(name string, check Check) error {
	if !checkName.MatchString(name) {
		return fmt.Errorf("%w: check name %q must match %s", ErrInvalid, name, checkName)
	}
	if check == nil {
		return fmt.Errorf("%w: check %q is nil", ErrInvalid, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.checks[name]; dup {
		return fmt.Errorf("%w: check %q is already registered", ErrInvalid, name)
	}
	s.checks[name] = check
	return nil
}

// Handler returns the server's handler (for tests and for embedding in another server).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the bound address while running (useful with port 0), nil otherwise.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start binds the address and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	return s.StartFunc(ctx, func(ctx context.Context) (lifecycle.RunFunc, error) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("ops server: listen on %s: %w", s.cfg.Addr, err)
		}
		srv := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.mu.Lock()
		s.addr = ln.Addr()
		s.mu.Unlock()
		return func(ctx context.Context) error {
			defer func() {
				s.mu.Lock()
				s.addr = nil
				s.mu.Unlock()
			}()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			select {
			case err := <-served:
				return fmt.Errorf("ops server on %s: %w", ln.Addr(), err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Warn("ops server: graceful shutdown incomplete; closing", slog.Any("error", err))
				_ = srv.Close()
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("ops server on %s: %w", ln.Addr(), err)
			}
			return nil
		}, nil
	})
}

// CheckResult is one check's outcome in the /readyz body.
type CheckResult struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Readiness is the /readyz body.
type Readiness struct {
	Status string        `json:"status"` // "ready" or "not ready"
	Checks []CheckResult `json:"checks"`
}

// Ready runs every check concurrently, each under the check timeout, and reports the results
// ordered by name. A check that overruns its timeout is reported failed without waiting for it
// to return.
func (s *Server) Ready(ctx context.Context) Readiness {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for name, c := range s.checks {
		checks[name] = c
	}
	s.mu.Unlock()

	results := make(chan CheckResult, len(checks))
	for name, check := range checks {
		go func() { results <- s.runCheck(ctx, name, check) }()
	}
	r := Readiness{Status: "ready", Checks: []CheckResult{}}
	for range checks {
		res := <-results
		if !res.OK {
			r.Status = "not ready"
		}
		r.Checks = append(r.Checks, res)
	}
	slices.SortFunc(r.Checks, func(a, b CheckResult) int { return cmp.Compare(a.Name, b.Name) })
	return r
}

func (s *Server) runCheck(ctx context.Context, name string, check Check) CheckResult {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1) // buffered: a check that overruns can still finish and exit
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		done <- check(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("timed out after %v", s.cfg.CheckTimeout)
	}
	res := CheckResult{Name: name, OK: err == nil, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ready := s.Ready(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if ready.Status != "ready" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(ready)
}
