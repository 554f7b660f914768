package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/store"
)

// parseYAML parses a request's YAML; on failure the error is INVALID_ARGUMENT carrying one
// cairn.v1.ValidationError per problem (with line and column) in its details.
func parseYAML(file, yaml string) (*dag.Workflow, []*cairnv1.ValidationError, error) {
	if yaml == "" {
		return nil, nil, fieldError("yaml", "is required")
	}
	wf, err := dag.Parse(file, []byte(yaml), dag.DefaultLimits())
	if err == nil {
		return wf, nil, nil
	}
	var list dag.ErrorList
	if !errors.As(err, &list) {
		return nil, nil, fieldError("yaml", "%v", err)
	}
	return nil, apiconv.ValidationErrors(file, list), nil
}

func validationStatus(verrs []*cairnv1.ValidationError) error {
	first := verrs[0]
	msg := fmt.Sprintf("yaml: %d problem(s); first at %d:%d: %s", len(verrs), first.Line, first.Column, first.Message)
	if first.TaskId != "" {
		msg = fmt.Sprintf("yaml: %d problem(s); first at %d:%d: task %q: %s", len(verrs), first.Line, first.Column, first.TaskId, first.Message)
	}
	details := make([]protoadapt.MessageV1, len(verrs))
	for i, v := range verrs {
		details[i] = protoadapt.MessageV1Of(v)
	}
	return withDetails(codes.InvalidArgument, msg, details...)
}

// ApplyWorkflow validates the YAML here (so a bad file never needs the leader) and forwards it.
func (s *Server) ApplyWorkflow(ctx context.Context, req *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	_, verrs, err := parseYAML("", req.GetYaml())
	if err != nil {
		return nil, err
	}
	if len(verrs) > 0 {
		return nil, validationStatus(verrs)
	}
	var resp *cairnv1.ApplyWorkflowResponse
	err = s.fwd.Do(ctx, "ApplyWorkflow", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.ApplyWorkflow(ctx, req)
		return err
	})
	return resp, err
}

// ValidateWorkflow checks YAML locally; it needs neither the database nor the leader.
func (s *Server) ValidateWorkflow(_ context.Context, req *cairnv1.ValidateWorkflowRequest) (*cairnv1.ValidateWorkflowResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	wf, verrs, err := parseYAML(req.GetFile(), req.GetYaml())
	if err != nil {
		return nil, err
	}
	if len(verrs) > 0 {
		return &cairnv1.ValidateWorkflowResponse{Valid: false, Errors: verrs}, nil
	}
	resp := &cairnv1.ValidateWorkflowResponse{Valid: true, Name: wf.Name}
	for _, i := range wf.Graph.Order() {
		resp.TopologicalOrder = append(resp.TopologicalOrder, wf.Tasks[i].ID)
	}
	return resp, nil
}

// ListWorkflows lists the workflows of a namespace by name at their latest version.
func (s *Server) ListWorkflows(ctx context.Context, req *cairnv1.ListWorkflowsRequest) (*cairnv1.ListWorkflowsResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ws, next, err := s.store.ListWorkflows(ctx, ns, store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "workflows")
	}
	if len(ws) == 0 {
		if err := s.checkNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	resp := &cairnv1.ListWorkflowsResponse{Workflows: []*cairnv1.Workflow{}, NextPageToken: next}
	for _, w := range ws {
		v, err := s.store.GetVersion(ctx, ns, w.Name, w.LatestVersion)
		if err != nil {
			return nil, toStatus(err, fmt.Sprintf("version %d of workflow %s", w.LatestVersion, w.Name))
		}
		out := apiconv.Workflow(v, s.parse(v), false)
		out.Description = w.Description
		resp.Workflows = append(resp.Workflows, out)
	}
	return resp, nil
}

// GetWorkflow returns one version (the latest by default) with its tasks and YAML.
func (s *Server) GetWorkflow(ctx context.Context, req *cairnv1.GetWorkflowRequest) (*cairnv1.GetWorkflowResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	version := 0
	what := "workflow " + req.GetName()
	if req.Version != nil {
		if req.GetVersion() < 1 || req.GetVersion() > 1<<31 {
			return nil, fieldError("version", "must be a version number ≥ 1, got %d", req.GetVersion())
		}
		version = int(req.GetVersion())
		what = fmt.Sprintf("version %d of workflow %s", version, req.GetName())
	}
	v, err := s.store.GetVersion(ctx, ns, req.GetName(), version)
	if err != nil {
		return nil, s.notFound(ctx, ns, err, what)
	}
	return &cairnv1.GetWorkflowResponse{Workflow: apiconv.Workflow(v, s.parse(v), true)}, nil
}

// latest returns the parsed latest version of a workflow of namespace ns, NOT_FOUND if there
// is none.
func (s *Server) latest(ctx context.Context, ns, field, name string) (*dag.Workflow, error) {
	if err := checkName(field, name); err != nil {
		return nil, err
	}
	v, err := s.store.GetVersion(ctx, ns, name, 0)
	if err != nil {
		return nil, s.notFound(ctx, ns, err, "workflow "+name)
	}
	wf := s.parse(v)
	if wf == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "workflow %s: version %d no longer parses; apply it again", name, v.Version)
	}
	return wf, nil
}
