package api

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apiconv"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// maxDeadLetterScan bounds the store pages one ListDeadLetters filtered by run reads.
const maxDeadLetterScan = 64

func (s *Server) toDeadLetter(ctx context.Context, d model.DeadLetter, versions map[uuid.UUID]int) *cairnv1.DeadLetter {
	out := &cairnv1.DeadLetter{
		Namespace:    d.Namespace,
		Id:           d.ID.String(),
		RunId:        d.RunID.String(),
		Workflow:     d.Workflow,
		TaskId:       d.TaskID,
		AttemptsMade: int32(len(d.Errors)),
		CreatedAt:    apiconv.Timestamp(d.CreatedAt),
		Attempts:     []*cairnv1.Attempt{},
	}
	if n := len(d.Errors); n > 0 {
		out.LastError = d.Errors[n-1].Error
		out.LastFailureKind = apiconv.FailureKind(d.Errors[n-1].FailureKind)
		out.AttemptsMade = int32(max(n, d.Errors[n-1].Attempt))
	}
	v, ok := versions[d.RunID]
	if !ok {
		if r, err := s.store.GetRunRow(ctx, d.Namespace, d.RunID); err == nil {
			v = r.Version
		}
		versions[d.RunID] = v
	}
	out.WorkflowVersion = int64(v)
	return out
}

// ListDeadLetters lists the open dead letters, newest first. The store filters by workflow;
// a run filter is applied here, reading store pages sized to what the page still needs so the
// next token always points right after the last entry returned.
func (s *Server) ListDeadLetters(ctx context.Context, req *cairnv1.ListDeadLettersRequest) (*cairnv1.ListDeadLettersResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	f := store.DeadLetterFilter{Open: true}
	if req.GetWorkflow() != "" {
		if err := checkName("workflow", req.GetWorkflow()); err != nil {
			return nil, err
		}
		f.Workflow = req.GetWorkflow()
	}
	var runID uuid.UUID
	if req.GetRunId() != "" {
		id, err := parseID("run_id", req.GetRunId())
		if err != nil {
			return nil, err
		}
		runID = id
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var found []model.DeadLetter
	token := req.GetPageToken()
	for scans := 0; ; scans++ {
		ds, next, err := s.store.ListDeadLetters(ctx, ns, f, store.PageRequest{Size: size - len(found), Token: token})
		if err != nil {
			return nil, toStatus(err, "dead letters")
		}
		for _, d := range ds {
			if runID == uuid.Nil || d.RunID == runID {
				found = append(found, d)
			}
		}
		token = next
		if runID == uuid.Nil || len(found) == size || next == "" || scans == maxDeadLetterScan {
			break
		}
	}
	if len(found) == 0 {
		if err := s.checkNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	resp := &cairnv1.ListDeadLettersResponse{DeadLetters: make([]*cairnv1.DeadLetter, 0, len(found)), NextPageToken: token}
	versions := map[uuid.UUID]int{}
	for _, d := range found {
		resp.DeadLetters = append(resp.DeadLetters, s.toDeadLetter(ctx, d, versions))
	}
	return resp, nil
}

// GetDeadLetter returns an open dead letter with every attempt of its task. A replayed entry
// has left the queue and is NOT_FOUND.
func (s *Server) GetDeadLetter(ctx context.Context, req *cairnv1.GetDeadLetterRequest) (*cairnv1.GetDeadLetterResponse, error) {
	ns, err := namespaceOf(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("id", req.GetId())
	if err != nil {
		return nil, err
	}
	what := "dead letter " + id.String()
	d, err := s.store.GetDeadLetter(ctx, ns, id)
	if err != nil {
		return nil, s.notFound(ctx, ns, err, what)
	}
	if !d.ReplayedAt.IsZero() {
		return nil, toStatus(fmt.Errorf("%s: %w (replayed)", what, store.ErrNotFound), what)
	}
	out := s.toDeadLetter(ctx, d, map[uuid.UUID]int{})
	as, err := s.store.ListAttempts(ctx, ns, d.RunID, d.TaskID)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("attempts of %s", what))
	}
	for _, a := range as {
		out.Attempts = append(out.Attempts, apiconv.Attempt(ns, a))
	}
	return &cairnv1.GetDeadLetterResponse{DeadLetter: out}, nil
}

// ReplayDeadLetter forwards a replay.
func (s *Server) ReplayDeadLetter(ctx context.Context, req *cairnv1.ReplayDeadLetterRequest) (*cairnv1.ReplayDeadLetterResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if _, err := parseID("id", req.GetId()); err != nil {
		return nil, err
	}
	var resp *cairnv1.ReplayDeadLetterResponse
	err := s.fwd.Do(ctx, "ReplayDeadLetter", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.ReplayDeadLetter(ctx, req)
		return err
	})
	return resp, err
}

// PurgeDeadLetter forwards a purge.
func (s *Server) PurgeDeadLetter(ctx context.Context, req *cairnv1.PurgeDeadLetterRequest) (*cairnv1.PurgeDeadLetterResponse, error) {
	if _, err := namespaceOf(req); err != nil {
		return nil, err
	}
	if _, err := parseID("id", req.GetId()); err != nil {
		return nil, err
	}
	var resp *cairnv1.PurgeDeadLetterResponse
	err := s.fwd.Do(ctx, "PurgeDeadLetter", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		var err error
		resp, err = c.PurgeDeadLetter(ctx, req)
		return err
	})
	return resp, err
}
