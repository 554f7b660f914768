package schedapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/authz"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
	"github.com/cairn-io/cairn/services/scheduler/internal/leadership"
)

// Limits on request fields.
const (
	MaxIdempotencyKey = 128
	MaxReason         = 1024
	// MaxValidationDetails bounds the ValidationErrors put in one status (the parser reports
	// at most its own MaxErrors anyway).
	MaxValidationDetails = 100
)

// Config configures a Server.
type Config struct {
	State     *leadership.State     // required
	Store     *store.Store          // required
	Workflows *engine.WorkflowCache // required; shared with the engine
	Logger    *slog.Logger          // nil: slog.Default()
	Now       func() time.Time      // nil: time.Now

	// Keyring seals secrets; nil: secrets cannot be set, and workflows that reference them
	// are refused.
	Keyring *secretbox.Keyring
}

// Server implements cairnv1.SchedulerServiceServer.
type Server struct {
	cairnv1.UnimplementedSchedulerServiceServer
	cfg Config
	log *slog.Logger
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.State == nil || cfg.Store == nil || cfg.Workflows == nil {
		return nil, errors.New("schedapi: State, Store and Workflows are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "schedapi")}, nil
}

// errInvalid marks request problems; toStatus makes them INVALID_ARGUMENT.
var errInvalid = errors.New("invalid argument")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// errPrecondition marks calls that do not fit the resource's state.
var errPrecondition = errors.New("failed precondition")

// ApplyWorkflow stores a workflow version from YAML.
func (s *Server) ApplyWorkflow(ctx context.Context, req *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	resp, err := s.applyWorkflow(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) applyWorkflow(ctx context.Context, req *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetYaml()) == "" {
		return nil, invalidf("yaml is empty: send the workflow definition")
	}
	wf, err := dag.Parse("", []byte(req.GetYaml()), dag.DefaultLimits())
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	// Every secret the workflow references must exist in its namespace now; one deleted
	// later fails the attempts that need it (the worker's resolution names it).
	if err := s.checkSecretRefs(ctx, ns, wf); err != nil {
		return nil, s.namespaceOr(ctx, ns, err)
	}
	compiled, err := json.Marshal(compiledForm(wf))
	if err != nil {
		return nil, fmt.Errorf("encode compiled form: %w", err)
	}
	v, created, err := s.cfg.Store.PutVersion(ctx, term.Epoch, ns, wf.Name, wf.Description, req.GetYaml(), compiled)
	if err != nil {
		return nil, err
	}
	s.cfg.Workflows.Put(v.Namespace, v.Workflow, v.Version, wf)
	if err := s.syncSchedule(ctx, term.Epoch, ns, wf); err != nil {
		return nil, fmt.Errorf("workflow %s/%s version %d stored, but its schedule was not updated (apply again): %w", ns, wf.Name, v.Version, err)
	}
	s.log.Info("workflow applied", "namespace", ns, "workflow", v.Workflow, "version", v.Version, "created", created, "by", authz.By(ctx))
	return &cairnv1.ApplyWorkflowResponse{Workflow: apiconv.Workflow(v, wf, true), Created: created}, nil
}

// compiledForm is what is stored as the version's compiled form: the task ids in topological
// order. The engine re-parses the YAML; this is for readers that need the order without it.
func compiledForm(wf *dag.Workflow) any {
	order := make([]string, 0, len(wf.Tasks))
	for _, i := range wf.Graph.Order() {
		order = append(order, wf.Graph.ID(i))
	}
	return struct {
		Order []string `json:"order"`
	}{order}
}

// syncSchedule makes the workflow's schedule row match the version just applied.
func (s *Server) syncSchedule(ctx context.Context, epoch int64, ns string, wf *dag.Workflow) error {
	var b store.Batch
	if wf.Schedule == nil {
		b.Add(store.DeleteSchedule{Namespace: ns, Workflow: wf.Name})
	} else {
		tz := wf.Timezone
		if tz == "" {
			tz = "UTC"
		}
		cur, err := s.cfg.Store.GetSchedule(ctx, ns, wf.Name)
		switch {
		case err == nil && cur.Cron == wf.Schedule.Expr && cur.Timezone == tz:
			return nil // unchanged: keep its next fire time
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		next := wf.Schedule.Next(s.cfg.Now())
		if next.IsZero() {
			return invalidf("schedule %q never fires again", wf.Schedule.Expr)
		}
		b.Add(store.PutSchedule{Schedule: model.Schedule{Namespace: ns, Workflow: wf.Name, Cron: wf.Schedule.Expr, Timezone: tz, NextFireAt: next}})
	}
	res, err := s.cfg.Store.Apply(ctx, epoch, &b)
	if err != nil {
		return err
	}
	return res[0]
}

// StartRun starts a run of a workflow's latest version.
func (s *Server) StartRun(ctx context.Context, req *cairnv1.StartRunRequest) (*cairnv1.StartRunResponse, error) {
	resp, err := s.startRun(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) startRun(ctx context.Context, req *cairnv1.StartRunRequest) (*cairnv1.StartRunResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	switch key := req.GetIdempotencyKey(); {
	case req.GetWorkflow() == "":
		return nil, invalidf("workflow is empty: name the workflow to run")
	case len(key) > MaxIdempotencyKey:
		return nil, invalidf("idempotency_key is %d bytes long, at most %d", len(key), MaxIdempotencyKey)
	case !utf8.ValidString(key):
		return nil, invalidf("idempotency_key is not valid UTF-8")
	}
	v, err := s.cfg.Store.GetVersion(ctx, ns, req.GetWorkflow(), 0)
	if err != nil {
		return nil, s.namespaceOr(ctx, ns, err)
	}
	wf, err := s.cfg.Workflows.Get(ctx, v.Namespace, v.Workflow, v.Version)
	if err != nil {
		return nil, err
	}
	params, err := wf.ResolveParams(req.GetParams())
	if err != nil {
		return nil, err
	}
	taskIDs := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		taskIDs[i] = t.ID
	}
	// The run is inserted and started in the leader's group commit (one transaction shared
	// with everything else the leader writes, not one per call).
	run := model.Run{ID: uuid.New(), Namespace: v.Namespace, Workflow: v.Workflow, Version: v.Version, Params: params,
		IdempotencyKey: req.GetIdempotencyKey(), Trigger: model.TriggerManual}
	created := true
	err = term.Engine.StartRun(ctx, run, taskIDs, wf)
	switch {
	case err == nil:
		if r, err := s.cfg.Store.GetRunRow(ctx, ns, run.ID); err == nil {
			run = r // the stored timestamps
		}
	case errors.Is(err, store.ErrConflict) && run.IdempotencyKey != "":
		created = false
		if run, err = s.cfg.Store.RunByKey(ctx, ns, run.Workflow, run.IdempotencyKey); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	log := s.log.With("run_id", run.ID, "namespace", ns, "workflow", run.Workflow, "version", run.Version, "by", authz.By(ctx))
	if created {
		log.Info("run started", "idempotency_key", run.IdempotencyKey)
	} else {
		log.Info("run already exists for this idempotency key", "idempotency_key", run.IdempotencyKey)
		if run.Version != v.Version {
			if w, err := s.cfg.Workflows.Get(ctx, ns, run.Workflow, run.Version); err == nil {
				wf = w
			}
		}
	}
	// A new run is answered as created (its task runs PENDING) without reading its rows back
	// (10,000 of them for a wide run); an existing one as it stands now.
	d := store.NewRunDetail(run, taskIDs)
	if !created {
		if d, err = s.cfg.Store.GetRun(ctx, ns, run.ID); err != nil {
			d = store.RunDetail{Run: run}
		}
	}
	return &cairnv1.StartRunResponse{Run: apiconv.RunDetail(d, wf), Existing: !created}, nil
}

// CancelRun cancels an active run.
func (s *Server) CancelRun(ctx context.Context, req *cairnv1.CancelRunRequest) (*cairnv1.CancelRunResponse, error) {
	resp, err := s.cancelRun(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) cancelRun(ctx context.Context, req *cairnv1.CancelRunRequest) (*cairnv1.CancelRunResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetRunId())
	if err != nil {
		return nil, invalidf("run_id %q is not a run id (a UUID)", req.GetRunId())
	}
	if len(req.GetReason()) > MaxReason {
		return nil, invalidf("reason is %d bytes long, at most %d", len(req.GetReason()), MaxReason)
	}
	err = term.Engine.CancelRun(ctx, ns, id, req.GetReason())
	if errors.Is(err, engine.ErrTerminal) {
		d, gerr := s.cfg.Store.GetRun(ctx, ns, id)
		if errors.Is(gerr, store.ErrNotFound) {
			return nil, s.namespaceOr(ctx, ns, fmt.Errorf("run %s: %w", id, store.ErrNotFound))
		}
		if gerr != nil {
			return nil, gerr
		}
		if d.Run.State.Terminal() {
			return nil, fmt.Errorf("%w: run %s already ended (%s)", errPrecondition, id, d.Run.State)
		}
		return nil, fmt.Errorf("%w: run %s (%s) is not active on the leader", errPrecondition, id, d.Run.State)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("run cancelled", "namespace", ns, "run_id", id, "reason", req.GetReason(), "by", authz.By(ctx))
	d, err := s.cfg.Store.GetRun(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	wf, _ := s.cfg.Workflows.Get(ctx, ns, d.Run.Workflow, d.Run.Version)
	return &cairnv1.CancelRunResponse{Run: apiconv.RunDetail(d, wf)}, nil
}

// RetryRun re-runs a failed or cancelled run's failed tasks and what ran after them.
func (s *Server) RetryRun(ctx context.Context, req *cairnv1.RetryRunRequest) (*cairnv1.RetryRunResponse, error) {
	resp, err := s.retryRun(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) retryRun(ctx context.Context, req *cairnv1.RetryRunRequest) (*cairnv1.RetryRunResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetRunId())
	if err != nil {
		return nil, invalidf("run_id %q is not a run id (a UUID)", req.GetRunId())
	}
	if err := term.Engine.RetryRun(ctx, ns, id); err != nil {
		return nil, s.namespaceOr(ctx, ns, err)
	}
	s.log.Info("run retried", "namespace", ns, "run_id", id, "by", authz.By(ctx))
	run, err := s.runProto(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	return &cairnv1.RetryRunResponse{Run: run}, nil
}

// ReplayDeadLetter puts a dead-lettered task back into its run.
func (s *Server) ReplayDeadLetter(ctx context.Context, req *cairnv1.ReplayDeadLetterRequest) (*cairnv1.ReplayDeadLetterResponse, error) {
	resp, err := s.replayDeadLetter(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) replayDeadLetter(ctx context.Context, req *cairnv1.ReplayDeadLetterRequest) (*cairnv1.ReplayDeadLetterResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := uuid.Parse(req.GetId())
	if err != nil {
		return nil, invalidf("id %q is not a dead letter id (a UUID)", req.GetId())
	}
	runID, err := term.Engine.ReplayDeadLetter(ctx, ns, id)
	if err != nil {
		return nil, s.namespaceOr(ctx, ns, err)
	}
	s.log.Info("dead letter replayed", "namespace", ns, "dead_letter_id", id, "run_id", runID, "by", authz.By(ctx))
	run, err := s.runProto(ctx, ns, runID)
	if err != nil {
		return nil, err
	}
	return &cairnv1.ReplayDeadLetterResponse{Run: run}, nil
}

// PurgeDeadLetter deletes a dead letter without replaying it.
func (s *Server) PurgeDeadLetter(ctx context.Context, req *cairnv1.PurgeDeadLetterRequest) (*cairnv1.PurgeDeadLetterResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, s.toStatus(err)
	}
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, s.toStatus(err)
	}
	id, err := uuid.Parse(req.GetId())
	if err != nil {
		return nil, s.toStatus(invalidf("id %q is not a dead letter id (a UUID)", req.GetId()))
	}
	if err := term.Engine.PurgeDeadLetter(ctx, ns, id); err != nil {
		return nil, s.toStatus(s.namespaceOr(ctx, ns, err))
	}
	s.log.Info("dead letter purged", "namespace", ns, "dead_letter_id", id, "by", authz.By(ctx))
	return &cairnv1.PurgeDeadLetterResponse{}, nil
}

// CreateNamespace creates a namespace.
func (s *Server) CreateNamespace(ctx context.Context, req *cairnv1.CreateNamespaceRequest) (*cairnv1.CreateNamespaceResponse, error) {
	resp, err := s.createNamespace(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) createNamespace(ctx context.Context, req *cairnv1.CreateNamespaceRequest) (*cairnv1.CreateNamespaceResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	name := req.GetNamespace()
	switch {
	case name == "":
		return nil, invalidf("namespace is empty: name the namespace to create")
	case !namespaceName.MatchString(name):
		return nil, invalidf("namespace %q is not a namespace name (want %s)", name, namespaceName)
	case len(req.GetDescription()) > store.MaxNamespaceDescription:
		return nil, invalidf("description is %d bytes long, at most %d", len(req.GetDescription()), store.MaxNamespaceDescription)
	case !utf8.ValidString(req.GetDescription()):
		return nil, invalidf("description is not valid UTF-8")
	}
	n, err := s.cfg.Store.CreateNamespace(ctx, term.Epoch, model.Namespace{Name: name, Description: req.GetDescription()})
	if err != nil {
		return nil, err
	}
	s.log.Info("namespace created", "namespace", n.Name)
	return &cairnv1.CreateNamespaceResponse{Namespace: apiconv.Namespace(n)}, nil
}

// DeleteNamespace deletes an empty namespace.
func (s *Server) DeleteNamespace(ctx context.Context, req *cairnv1.DeleteNamespaceRequest) (*cairnv1.DeleteNamespaceResponse, error) {
	resp, err := s.deleteNamespace(ctx, req)
	return resp, s.toStatus(err)
}

func (s *Server) deleteNamespace(ctx context.Context, req *cairnv1.DeleteNamespaceRequest) (*cairnv1.DeleteNamespaceResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, err
	}
	name := req.GetNamespace()
	switch {
	case name == "":
		return nil, invalidf("namespace is empty: name the namespace to delete")
	case !namespaceName.MatchString(name):
		return nil, invalidf("namespace %q is not a namespace name (want %s)", name, namespaceName)
	case name == model.DefaultNamespace:
		return nil, fmt.Errorf("%w: namespace %s cannot be deleted: it is the namespace of every request that names none",
			errPrecondition, name)
	}
	if err := s.cfg.Store.DeleteNamespace(ctx, term.Epoch, name); err != nil {
		return nil, err
	}
	s.log.Info("namespace deleted", "namespace", name)
	return &cairnv1.DeleteNamespaceResponse{}, nil
}

// runProto reads a run back for a response.
func (s *Server) runProto(ctx context.Context, ns string, id uuid.UUID) (*cairnv1.Run, error) {
	d, err := s.cfg.Store.GetRun(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	wf, _ := s.cfg.Workflows.Get(ctx, ns, d.Run.Workflow, d.Run.Version)
	return apiconv.RunDetail(d, wf), nil
}

// namespaced is a request naming a namespace (every public request does; empty means the
// default namespace).
type namespaced interface{ GetNamespace() string }

// namespaceOf returns the namespace a request names: its namespace field, or
// model.DefaultNamespace when that is empty. A malformed name is INVALID_ARGUMENT naming the
// field.
func namespaceOf(req any) (string, error) {
	r, ok := req.(namespaced)
	if !ok || r.GetNamespace() == "" {
		return model.DefaultNamespace, nil
	}
	ns := r.GetNamespace()
	if !namespaceName.MatchString(ns) {
		return "", invalidf("namespace %q is not a namespace name (want %s)", ns, namespaceName)
	}
	return ns, nil
}

var namespaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// namespaceOr turns a not-found error into one naming the namespace when the namespace itself
// does not exist (so that an unknown namespace is reported as such, not as a missing run).
// Only a failed call pays for the extra read.
func (s *Server) namespaceOr(ctx context.Context, ns string, err error) error {
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	if _, nerr := s.cfg.Store.GetNamespace(ctx, ns); errors.Is(nerr, store.ErrNotFound) {
		return nerr
	}
	return err
}

// toStatus translates an error into the gRPC status the caller sees. It is the only place
// where codes are chosen.
func (s *Server) toStatus(err error) error {
	if err == nil {
		return nil
	}
	var notLeader *leadership.NotLeaderError
	var list dag.ErrorList
	switch {
	case errors.As(err, &notLeader):
		return notLeader.GRPCStatus().Err()
	case errors.As(err, &list):
		return validationStatus(list)
	case errors.Is(err, dag.ErrParams), errors.Is(err, errInvalid), errors.Is(err, store.ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrNotFound), errors.Is(err, engine.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, errPrecondition), errors.Is(err, engine.ErrRunActive), errors.Is(err, engine.ErrNothingToRetry),
		errors.Is(err, engine.ErrAlreadyReplayed), errors.Is(err, store.ErrNotEmpty):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, store.ErrStaleEpoch), errors.Is(err, engine.ErrNotLeader):
		return status.Error(codes.Unavailable, "leadership changed during the call; retry against the new leader: "+err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.log.Error("internal error", "err", err)
	return status.Error(codes.Internal, err.Error())
}

// validationStatus is INVALID_ARGUMENT with one ValidationError per problem in its details.
func validationStatus(list dag.ErrorList) error {
	first := list[0]
	where := ""
	if first.Line > 0 {
		where = fmt.Sprintf("line %d, column %d: ", first.Line, first.Column)
	}
	if first.TaskID != "" {
		where += fmt.Sprintf("task %q: ", first.TaskID)
	}
	st := status.New(codes.InvalidArgument, fmt.Sprintf("the workflow is invalid (%d problem(s); see the details): %s%s",
		len(list), where, first.Msg))
	details := make([]protoadapt.MessageV1, 0, min(len(list), MaxValidationDetails))
	for _, ve := range apiconv.ValidationErrors("", list[:min(len(list), MaxValidationDetails)]) {
		details = append(details, protoadapt.MessageV1Of(ve))
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}

// ListWorkers answers the leader's part of ClusterService.ListWorkers: the workers attached
// to its engine, with their load. The gateway merges it into the etcd list.
func (s *Server) ListWorkers(ctx context.Context, req *cairnv1.ListWorkersRequest) (*cairnv1.ListWorkersResponse, error) {
	term, err := s.cfg.State.Current()
	if err != nil {
		return nil, s.toStatus(err)
	}
	loads, err := term.Engine.Workers(ctx, req.GetPool())
	if err != nil {
		return nil, s.toStatus(err)
	}
	resp := &cairnv1.ListWorkersResponse{Workers: make([]*cairnv1.Worker, 0, len(loads)), LoadKnown: true}
	for _, w := range loads {
		resp.Workers = append(resp.Workers, &cairnv1.Worker{
			Id:         w.ID,
			Pool:       w.Pool,
			Capacity:   int32(w.Capacity),
			Running:    int32(w.Running),
			Queued:     int32(w.Queued),
			Connected:  true,
			Draining:   w.Draining,
			LastSeenAt: apiconv.Timestamp(w.LastSeen),
		})
	}
	return resp, nil
}
