package workerapi

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// outbound converts an engine message for the wire.
func outbound(m engine.Outbound, schedulerID string, heartbeat time.Duration) *cairnv1.SchedulerMessage {
	switch {
	case m.Welcome != nil:
		w := &cairnv1.SchedulerWelcome{
			SchedulerId:       schedulerID,
			Epoch:             m.Welcome.Epoch,
			HeartbeatInterval: durationpb.New(heartbeat),
			MaxOutputBytes:    model.MaxAttemptOutput,
		}
		for _, a := range m.Welcome.Adopted {
			w.Adopted = append(w.Adopted, &cairnv1.AttemptRef{AttemptId: a.AttemptID, FencingToken: a.Token})
		}
		for _, a := range m.Welcome.Rejected {
			w.Rejected = append(w.Rejected, &cairnv1.AttemptRef{AttemptId: a.AttemptID, FencingToken: a.Token})
		}
		return &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Welcome{Welcome: w}}
	case m.Assignment != nil:
		a := m.Assignment
		pa := &cairnv1.Assignment{
			AttemptId:      a.AttemptID.String(),
			RunId:          a.RunID.String(),
			TaskId:         a.TaskID,
			Attempt:        int32(a.Number),
			FencingToken:   a.Token,
			IdempotencyKey: a.IdempotencyKey,
			Spec:           taskSpec(a.Spec),
			Workflow:       a.Workflow,
			Namespace:      a.Namespace,
		}
		if a.Timeout > 0 {
			pa.Timeout = durationpb.New(a.Timeout)
		}
		for _, r := range a.Secrets { // names and placeholders only: no value is ever here
			pa.Secrets = append(pa.Secrets, &cairnv1.SecretRef{Name: r.Name, Placeholder: r.Placeholder})
		}
		return &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Assignment{Assignment: pa}}
	case m.Ack != nil:
		return &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_ResultAck{ResultAck: &cairnv1.ResultAck{
			AttemptId: m.Ack.AttemptID, ResultId: m.Ack.ResultID, Accepted: m.Ack.Accepted, Reason: m.Ack.Reason}}}
	case m.Cancel != nil:
		return &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Cancel{Cancel: &cairnv1.CancelAttempt{
			AttemptId: m.Cancel.AttemptID, FencingToken: m.Cancel.Token, Reason: m.Cancel.Reason}}}
	}
	return nil
}

// taskSpec converts an executor spec to its wire form.
func taskSpec(s executor.Spec) *cairnv1.TaskSpec {
	switch s.Type {
	case executor.TypeShell:
		sh := s.Shell
		if sh == nil {
			sh = &executor.ShellSpec{}
		}
		return &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_SHELL, Kind: &cairnv1.TaskSpec_Shell{Shell: &cairnv1.ShellTaskSpec{
			Argv: sh.Argv, Script: sh.Script, Env: sh.Env, Workdir: sh.Workdir}}}
	case executor.TypeHTTP:
		h := s.HTTP
		if h == nil {
			h = &executor.HTTPSpec{}
		}
		expect := make([]int32, len(h.ExpectStatus))
		for i, st := range h.ExpectStatus {
			expect[i] = int32(st)
		}
		return &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_HTTP, Kind: &cairnv1.TaskSpec_Http{Http: &cairnv1.HttpTaskSpec{
			Method: h.Method, Url: h.URL, Headers: h.Headers, Body: h.Body, ExpectStatus: expect}}}
	}
	return &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_NOOP}
}

// failureKinds maps what a worker may report. LOST and STALE are the scheduler's own.
var failureKinds = map[cairnv1.FailureKind]model.FailureKind{
	cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED:       model.FailureNone,
	cairnv1.FailureKind_FAILURE_KIND_TIMEOUT:           model.FailureTimeout,
	cairnv1.FailureKind_FAILURE_KIND_EXIT_CODE:         model.FailureExitCode,
	cairnv1.FailureKind_FAILURE_KIND_UNEXPECTED_STATUS: model.FailureUnexpectedStatus,
	cairnv1.FailureKind_FAILURE_KIND_CONNECTION:        model.FailureConnection,
	cairnv1.FailureKind_FAILURE_KIND_CANCELLED:         model.FailureCancelled,
	cairnv1.FailureKind_FAILURE_KIND_INTERNAL:          model.FailureInternal,
}

// result converts and checks a worker's result; field prefixes the field names in errors.
func result(r *cairnv1.AttemptResult, field string) (engine.Result, error) {
	if r == nil {
		return engine.Result{}, fmt.Errorf("%s is missing", field)
	}
	switch {
	case r.GetResultId() == "":
		return engine.Result{}, fmt.Errorf("%s.result_id is empty", field)
	case r.GetAttemptId() == "":
		return engine.Result{}, fmt.Errorf("%s.attempt_id is empty", field)
	case r.GetFencingToken() <= 0:
		return engine.Result{}, fmt.Errorf("%s.fencing_token is %d, must be positive", field, r.GetFencingToken())
	}
	out := engine.Result{
		ResultID: r.GetResultId(), AttemptID: r.GetAttemptId(), Token: r.GetFencingToken(),
		Output: r.GetOutput(), OutputTruncated: r.GetOutputTruncated(), Error: r.GetError(),
	}
	switch r.GetOutcome() {
	case cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED:
		out.Succeeded = true
	case cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED:
		kind, ok := failureKinds[r.GetFailureKind()]
		if !ok {
			return engine.Result{}, fmt.Errorf("%s.failure_kind %s cannot be reported by a worker", field, r.GetFailureKind())
		}
		if kind == model.FailureNone {
			kind = model.FailureInternal
		}
		out.FailureKind = kind
		out.NoRetry = r.GetNoRetry()
	default:
		return engine.Result{}, fmt.Errorf("%s.outcome is %s, want SUCCEEDED or FAILED", field, r.GetOutcome())
	}
	if r.ExitCode != nil {
		v := int(r.GetExitCode())
		out.ExitCode = &v
	}
	if r.HttpStatus != nil {
		v := int(r.GetHttpStatus())
		out.HTTPStatus = &v
	}
	if len(out.Output) > model.MaxAttemptOutput {
		out.Output, out.OutputTruncated = out.Output[:model.MaxAttemptOutput], true
	}
	out.Started = timeOf(r.GetStartedAt())
	out.Finished = timeOf(r.GetFinishedAt())
	return out, nil
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
