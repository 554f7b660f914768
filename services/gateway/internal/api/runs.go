package api

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// StartRun checks the workflow and params against the latest version, then forwards. The
// leader makes the idempotency key safe under concurrent calls (a unique key in PostgreSQL).
func (s *Server) StartRun(ctx context.Context, req *cairnv1.StartRunRequest) (*cairnv1.StartRunResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(req.GetIdempotencyKey()); n > maxIdempotencyKey {
		return nil, fieldError("idempotency_key", "is %d characters long, at most %d allowed", n, maxIdempotencyKey)
	}
	wf, err := s.latest(ctx, ns, "workflow", req.GetWorkflow())
	if err != nil {
		return nil, err
	}
	if err := wf.ValidateParams(req.GetParams()); err != nil {
		return nil, fieldError("params", "%s", strings.TrimPrefix(err.Error(), dag.ErrParams.Error()+": "))
	}
	var resp *cairnv1.StartRunResponse
	err = s.fwd.Do(ctx, "StartRun", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.StartRun(ctx, req)
		return err
	})
	return resp, err
}

// ListRuns lists the runs of a namespace newest first.
func (s *Server) ListRuns(ctx context.Context, req *cairnv1.ListRunsRequest) (*cairnv1.ListRunsResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	var f store.RunFilter
	if req.GetWorkflow() != "" {
		if err := checkName("workflow", req.GetWorkflow()); err != nil {
			return nil, err
		}
		f.Workflow = req.GetWorkflow()
	}
	if st := req.GetState(); st != cairnv1.RunState_RUN_STATE_UNSPECIFIED {
		name, ok := cairnv1.RunState_name[int32(st)]
		if !ok {
			return nil, fieldError("state", "unknown run state %d", st)
		}
		f.State = model.RunState(strings.TrimPrefix(name, "RUN_STATE_"))
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	runs, next, err := s.store.ListRuns(ctx, ns, f, store.PageRequest{Size: size, Token: req.GetPageToken()})
	if err != nil {
		return nil, toStatus(err, "runs")
	}
	if len(runs) == 0 {
		if err := s.checkNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	resp := &cairnv1.ListRunsResponse{Runs: make([]*cairnv1.Run, 0, len(runs)), NextPageToken: next}
	for _, r := range runs {
		resp.Runs = append(resp.Runs, apiconv.Run(r))
	}
	return resp, nil
}

func (s *Server) getRun(ctx context.Context, ns string, id uuid.UUID) (*cairnv1.Run, error) {
	d, err := s.store.GetRun(ctx, ns, id)
	if err != nil {
		return nil, s.notFound(ctx, ns, err, "run "+id.String())
	}
	return apiconv.RunDetail(d, s.runWorkflow(ctx, d.Run)), nil
}

// GetRun returns a run with every task.
func (s *Server) GetRun(ctx context.Context, req *cairnv1.GetRunRequest) (*cairnv1.GetRunResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("run_id", req.GetRunId())
	if err != nil {
		return nil, err
	}
	run, err := s.getRun(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	return &cairnv1.GetRunResponse{Run: run}, nil
}

// CancelRun forwards a cancellation.
func (s *Server) CancelRun(ctx context.Context, req *cairnv1.CancelRunRequest) (*cairnv1.CancelRunResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if _, err := parseID("run_id", req.GetRunId()); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(req.GetReason()); n > maxReason {
		return nil, fieldError("reason", "is %d characters long, at most %d allowed", n, maxReason)
	}
	var resp *cairnv1.CancelRunResponse
	err := s.fwd.Do(ctx, "CancelRun", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.CancelRun(ctx, req)
		return err
	})
	return resp, err
}

// RetryRun forwards a retry.
func (s *Server) RetryRun(ctx context.Context, req *cairnv1.RetryRunRequest) (*cairnv1.RetryRunResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if _, err := parseID("run_id", req.GetRunId()); err != nil {
		return nil, err
	}
	var resp *cairnv1.RetryRunResponse
	err := s.fwd.Do(ctx, "RetryRun", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.RetryRun(ctx, req)
		return err
	})
	return resp, err
}

// ListAttempts lists one task's attempts, oldest first.
func (s *Server) ListAttempts(ctx context.Context, req *cairnv1.ListAttemptsRequest) (*cairnv1.ListAttemptsResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("run_id", req.GetRunId())
	if err != nil {
		return nil, err
	}
	if req.GetTaskId() == "" {
		return nil, fieldError("task_id", "is required")
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	query := fmt.Sprintf("attempts|%q|%s|%q", ns, id, req.GetTaskId())
	after, err := decodePageToken(req.GetPageToken(), query)
	if err != nil {
		return nil, err
	}
	as, err := s.store.ListAttempts(ctx, ns, id, req.GetTaskId())
	if err != nil {
		return nil, s.notFound(ctx, ns, err, fmt.Sprintf("task %q of run %s", req.GetTaskId(), id))
	}
	page, next := pageOf(as, func(a model.Attempt) string { return fmt.Sprintf("%010d", a.Number) }, after, size, query)
	resp := &cairnv1.ListAttemptsResponse{Attempts: make([]*cairnv1.Attempt, 0, len(page)), NextPageToken: next}
	for _, a := range page {
		resp.Attempts = append(resp.Attempts, apiconv.Attempt(ns, a))
	}
	return resp, nil
}

// WatchRun streams a run's history after after_seq, then polls for new events until the run
// is terminal and every event up to that point has been sent.
//
// Each round reads the run's state before its events: the transition to a terminal state and
// its event are written in one transaction, so once a terminal state has been seen, the events
// read afterwards include everything up to it, and the stream can end.
func (s *Server) WatchRun(req *cairnv1.WatchRunRequest, stream grpc.ServerStreamingServer[cairnv1.WatchRunResponse]) error {
	ctx := stream.Context()
	ns, err := namespaceOf(req)
	if err != nil {
		return err
	}
	id, err := parseID("run_id", req.GetRunId())
	if err != nil {
		return err
	}
	if req.GetAfterSeq() < 0 {
		return fieldError("after_seq", "must not be negative, got %d", req.GetAfterSeq())
	}
	after := req.GetAfterSeq()
	ticker := time.NewTicker(s.watch)
	defer ticker.Stop()
	for {
		d, err := s.store.GetRun(ctx, ns, id)
		if err != nil {
			return s.notFound(ctx, ns, err, "run "+id.String())
		}
		terminal := d.Run.State.Terminal()
		for {
			evs, err := s.store.EventsSince(ctx, ns, id, after, store.MaxPageSize)
			if err != nil {
				return toStatus(err, "events of run "+id.String())
			}
			for _, e := range evs {
				if err := stream.Send(&cairnv1.WatchRunResponse{Event: apiconv.Event(e)}); err != nil {
					return err
				}
				after = e.Seq
			}
			if len(evs) < store.MaxPageSize {
				break
			}
		}
		if terminal {
			return nil
		}
		select {
		case <-ctx.Done():
			return toStatus(context.Cause(ctx), "watch of run "+id.String())
		case <-ticker.C:
		}
	}
}
