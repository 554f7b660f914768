package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

const (
	defaultPageSize = store.DefaultPageSize
	// DefaultWatchInterval is how often WatchRun polls a live run's history.
	DefaultWatchInterval = 150 * time.Millisecond
	// maxIdempotencyKey and maxReason bound free-text request fields.
	maxIdempotencyKey = 128
	maxReason         = 1024
	// parseCacheSize bounds the parsed workflow versions kept in memory (versions are
	// immutable, so entries never go stale).
	parseCacheSize = 256
)

// workflowName is the DAG format's name rule (pkg/dag, docs/dag-format.md).
var workflowName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// Forwarder sends a mutation to the scheduler leader (package forward).
type Forwarder interface {
	Do(ctx context.Context, method string, fn func(ctx context.Context, c cairnv1.SchedulerServiceClient) error) error
}

// Cluster reads the coordination state from etcd.
type Cluster interface {
	// Workers returns the live workers ordered by ID.
	Workers(ctx context.Context) ([]membership.Member, error)
	// Leadership returns the leader and every scheduler replica (Workers left at 0).
	Leadership(ctx context.Context) (*cairnv1.Cluster, error)
}

// Config configures a Server.
type Config struct {
	Store     *store.Store // required
	Forwarder Forwarder    // required
	Cluster   Cluster      // required
	// MaxPageSize caps page_size; zero means store.MaxPageSize (the store's own cap).
	MaxPageSize int
	// WatchInterval is WatchRun's polling period; zero means DefaultWatchInterval.
	WatchInterval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server implements the five public services. Reads come from PostgreSQL; mutations are
// validated here and forwarded to the leader.
type Server struct {
	cairnv1.UnimplementedWorkflowServiceServer
	cairnv1.UnimplementedRunServiceServer
	cairnv1.UnimplementedDeadLetterServiceServer
	cairnv1.UnimplementedClusterServiceServer
	cairnv1.UnimplementedAuthServiceServer
	cairnv1.UnimplementedNamespaceServiceServer
	cairnv1.UnimplementedSecretServiceServer

	store   *store.Store
	fwd     Forwarder
	cluster Cluster
	maxPage int
	watch   time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	parsed map[versionKey]*dag.Workflow
}

type versionKey struct {
	ns      string
	name    string
	version int
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("api: Store is nil"))
	}
	if cfg.Forwarder == nil {
		errs = append(errs, errors.New("api: Forwarder is nil"))
	}
	if cfg.Cluster == nil {
		errs = append(errs, errors.New("api: Cluster is nil"))
	}
	if cfg.MaxPageSize < 0 {
		errs = append(errs, fmt.Errorf("api: MaxPageSize %d is negative", cfg.MaxPageSize))
	}
	if cfg.WatchInterval < 0 {
		errs = append(errs, fmt.Errorf("api: WatchInterval %v is negative", cfg.WatchInterval))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Server{
		store: cfg.Store, fwd: cfg.Forwarder, cluster: cfg.Cluster,
		maxPage: cfg.MaxPageSize, watch: cfg.WatchInterval, log: cfg.Logger,
		parsed: map[versionKey]*dag.Workflow{},
	}
	if s.maxPage == 0 {
		s.maxPage = store.MaxPageSize
	}
	if s.watch == 0 {
		s.watch = DefaultWatchInterval
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// parse returns the parsed DAG of a stored version, from the cache when possible. A stored
// version that no longer parses (the format got stricter) yields nil: reads still work, with
// the DAG fields left empty.
func (s *Server) parse(v model.WorkflowVersion) *dag.Workflow {
	ns, name, version, yaml := v.Namespace, v.Workflow, v.Version, v.YAML
	k := versionKey{ns, name, version}
	s.mu.Lock()
	wf, ok := s.parsed[k]
	s.mu.Unlock()
	if ok {
		return wf
	}
	wf, err := dag.Parse(name+".yaml", []byte(yaml), dag.DefaultLimits())
	if err != nil {
		s.log.Warn("stored workflow version does not parse", slog.String("namespace", ns), slog.String("workflow", name),
			slog.Int("version", version), slog.Any("error", err))
		wf = nil
	}
	s.mu.Lock()
	if len(s.parsed) >= parseCacheSize {
		clear(s.parsed)
	}
	s.parsed[k] = wf
	s.mu.Unlock()
	return wf
}

// runWorkflow returns the parsed DAG of a run's workflow version, nil if it cannot be read.
func (s *Server) runWorkflow(ctx context.Context, r model.Run) *dag.Workflow {
	k := versionKey{r.Namespace, r.Workflow, r.Version}
	s.mu.Lock()
	wf, ok := s.parsed[k]
	s.mu.Unlock()
	if ok {
		return wf
	}
	v, err := s.store.GetVersion(ctx, r.Namespace, r.Workflow, r.Version)
	if err != nil {
		return nil
	}
	return s.parse(v)
}

// namespaced is a request naming a namespace (every public request does).
type namespaced interface{ GetNamespace() string }

// namespaceOf returns the namespace a request names: its namespace field, or
// model.DefaultNamespace when that is empty. A malformed name is INVALID_ARGUMENT naming the
// field. Whether the namespace exists is checked only when a call finds nothing (notFound):
// the rows of a namespace that does not exist cannot exist either.
func namespaceOf(req any) (string, error) {
	r, ok := req.(namespaced)
	if !ok || r.GetNamespace() == "" {
		return model.DefaultNamespace, nil
	}
	ns := r.GetNamespace()
	if !workflowName.MatchString(ns) {
		return "", fieldError("namespace", "%q is not a namespace name (want %s)", ns, workflowName)
	}
	return ns, nil
}

// notFound translates a store error about what (in namespace ns) into a status; when it is
// ErrNotFound and the namespace itself does not exist, NOT_FOUND names the namespace instead.
// A resource of another namespace is NOT_FOUND like a missing one, never PERMISSION_DENIED.
func (s *Server) notFound(ctx context.Context, ns string, err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		if nerr := s.checkNamespace(ctx, ns); nerr != nil {
			return nerr
		}
	}
	return toStatus(err, what)
}

// checkNamespace is NOT_FOUND naming the namespace if it does not exist, nil if it does.
func (s *Server) checkNamespace(ctx context.Context, ns string) error {
	if _, err := s.store.GetNamespace(ctx, ns); err != nil {
		return toStatus(err, "namespace "+ns)
	}
	return nil
}

func checkName(field, name string) error {
	if name == "" {
		return fieldError(field, "is required")
	}
	if !workflowName.MatchString(name) {
		return fieldError(field, "%q is not a workflow name (want %s)", name, workflowName)
	}
	return nil
}

func parseID(field, id string) (uuid.UUID, error) {
	if id == "" {
		return uuid.Nil, fieldError(field, "is required")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, fieldError(field, "%q is not a valid UUID", id)
	}
	return u, nil
}
