package worker

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/executor"
)

// ErrBadAssignment is wrapped by every error about a malformed Assignment.
var ErrBadAssignment = errors.New("bad assignment")

// toAttempt converts an Assignment into the executor's Attempt. It checks what the executor
// cannot (ids, token, the oneof matching the type); the executor validates the rest.
func toAttempt(a *cairnv1.Assignment) (*executor.Attempt, error) {
	switch {
	case a.GetAttemptId() == "":
		return nil, fmt.Errorf("%w: attempt_id is empty", ErrBadAssignment)
	case a.GetFencingToken() <= 0:
		return nil, fmt.Errorf("%w: attempt %s: fencing_token %d must be positive", ErrBadAssignment, a.GetAttemptId(), a.GetFencingToken())
	case a.GetRunId() == "" || a.GetTaskId() == "":
		return nil, fmt.Errorf("%w: attempt %s: run_id and task_id are required", ErrBadAssignment, a.GetAttemptId())
	}
	at := &executor.Attempt{
		RunID:          a.GetRunId(),
		TaskID:         a.GetTaskId(),
		Number:         int(a.GetAttempt()),
		IdempotencyKey: a.GetIdempotencyKey(),
	}
	if d := a.GetTimeout(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: attempt %s: timeout: %v", ErrBadAssignment, a.GetAttemptId(), err)
		}
		at.Timeout = d.AsDuration()
		if at.Timeout <= 0 {
			return nil, fmt.Errorf("%w: attempt %s: timeout %v must be positive (leave it unset for none)", ErrBadAssignment, a.GetAttemptId(), at.Timeout)
		}
	}
	spec := a.GetSpec()
	if spec == nil {
		return nil, fmt.Errorf("%w: attempt %s: spec is missing", ErrBadAssignment, a.GetAttemptId())
	}
	switch spec.GetType() {
	case cairnv1.TaskType_TASK_TYPE_SHELL:
		sh := spec.GetShell()
		if sh == nil {
			return nil, fmt.Errorf("%w: attempt %s: shell task without shell settings", ErrBadAssignment, a.GetAttemptId())
		}
		at.Spec = executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{
			Argv: sh.GetArgv(), Script: sh.GetScript(), Env: sh.GetEnv(), Workdir: sh.GetWorkdir(),
		}}
	case cairnv1.TaskType_TASK_TYPE_HTTP:
		h := spec.GetHttp()
		if h == nil {
			return nil, fmt.Errorf("%w: attempt %s: http task without http settings", ErrBadAssignment, a.GetAttemptId())
		}
		expect := make([]int, len(h.GetExpectStatus()))
		for i, s := range h.GetExpectStatus() {
			expect[i] = int(s)
		}
		at.Spec = executor.Spec{Type: executor.TypeHTTP, HTTP: &executor.HTTPSpec{
			Method: h.GetMethod(), URL: h.GetUrl(), Headers: h.GetHeaders(), Body: h.GetBody(), ExpectStatus: expect,
		}}
	case cairnv1.TaskType_TASK_TYPE_NOOP:
		if spec.GetKind() != nil {
			return nil, fmt.Errorf("%w: attempt %s: noop task with shell or http settings", ErrBadAssignment, a.GetAttemptId())
		}
		at.Spec = executor.Spec{Type: executor.TypeNoop}
	default:
		return nil, fmt.Errorf("%w: attempt %s: task type %v is not shell, http or noop", ErrBadAssignment, a.GetAttemptId(), spec.GetType())
	}
	return at, nil
}

var failureKinds = map[executor.FailureKind]cairnv1.FailureKind{
	executor.FailureNone:             cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED,
	executor.FailureTimeout:          cairnv1.FailureKind_FAILURE_KIND_TIMEOUT,
	executor.FailureExitCode:         cairnv1.FailureKind_FAILURE_KIND_EXIT_CODE,
	executor.FailureUnexpectedStatus: cairnv1.FailureKind_FAILURE_KIND_UNEXPECTED_STATUS,
	executor.FailureConnection:       cairnv1.FailureKind_FAILURE_KIND_CONNECTION,
	executor.FailureCancelled:        cairnv1.FailureKind_FAILURE_KIND_CANCELLED,
	executor.FailureInternal:         cairnv1.FailureKind_FAILURE_KIND_INTERNAL,
}

// toResult converts an executor result. maxOutput > 0 caps the output further (the leader's
// limit from its welcome): a shell task keeps its tail, an HTTP task the head of the body.
func toResult(resultID string, a *cairnv1.Assignment, typ executor.Type, r *executor.Result, maxOutput int64) *cairnv1.AttemptResult {
	out := &cairnv1.AttemptResult{
		ResultId:        resultID,
		AttemptId:       a.GetAttemptId(),
		RunId:           a.GetRunId(),
		TaskId:          a.GetTaskId(),
		FencingToken:    a.GetFencingToken(),
		Output:          r.Output,
		OutputTruncated: r.OutputTruncated,
		Error:           r.Error,
		StartedAt:       timestamppb.New(r.Started),
		FinishedAt:      timestamppb.New(r.Finished),
	}
	if r.Succeeded {
		out.Outcome = cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED
	} else {
		out.Outcome = cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED
		kind, ok := failureKinds[r.Failure]
		if !ok || kind == cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			kind = cairnv1.FailureKind_FAILURE_KIND_INTERNAL
		}
		out.FailureKind = kind
		out.NoRetry = r.NoRetry
		if out.Error == "" {
			out.Error = "attempt failed: " + r.Failure.String()
		}
	}
	if r.ExitCode >= 0 {
		code := int32(r.ExitCode)
		out.ExitCode = &code
	}
	if r.HTTPStatus > 0 {
		st := int32(r.HTTPStatus)
		out.HttpStatus = &st
	}
	if maxOutput > 0 && int64(len(out.Output)) > maxOutput {
		if typ == executor.TypeHTTP {
			out.Output = out.Output[:maxOutput]
		} else {
			out.Output = out.Output[int64(len(out.Output))-maxOutput:]
		}
		out.OutputTruncated = true
	}
	return out
}

// handBack is the result of an assignment the worker did not run: FAILED with failure kind
// CANCELLED, which the leader takes as "given back" and re-queues without blaming the task.
func handBack(resultID string, a *cairnv1.Assignment, reason string, now time.Time) *cairnv1.AttemptResult {
	return &cairnv1.AttemptResult{
		ResultId:     resultID,
		AttemptId:    a.GetAttemptId(),
		RunId:        a.GetRunId(),
		TaskId:       a.GetTaskId(),
		FencingToken: a.GetFencingToken(),
		Outcome:      cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED,
		FailureKind:  cairnv1.FailureKind_FAILURE_KIND_CANCELLED,
		Error:        reason,
		StartedAt:    timestamppb.New(now),
		FinishedAt:   timestamppb.New(now),
	}
}

// badAssignmentResult is the result of an assignment that could not be converted: FAILED,
// INTERNAL, like an invalid spec caught by the executor.
func badAssignmentResult(resultID string, a *cairnv1.Assignment, err error, now time.Time) *cairnv1.AttemptResult {
	r := handBack(resultID, a, err.Error(), now)
	r.FailureKind = cairnv1.FailureKind_FAILURE_KIND_INTERNAL
	return r
}
