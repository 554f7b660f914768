package workerapi

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

func TestResultValidation(t *testing.T) {
	ok := func() *cairnv1.AttemptResult {
		return &cairnv1.AttemptResult{ResultId: "r", AttemptId: "a", FencingToken: 5, Outcome: cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED,
			FailureKind: cairnv1.FailureKind_FAILURE_KIND_EXIT_CODE, ExitCode: new(int32(3))}
	}
	r, err := result(ok(), "result")
	if err != nil || r.Succeeded || r.FailureKind != model.FailureExitCode || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Fatalf("result = %+v, %v", r, err)
	}
	for _, c := range []struct {
		mut  func(*cairnv1.AttemptResult)
		want string
	}{
		{func(r *cairnv1.AttemptResult) { r.ResultId = "" }, "result.result_id"},
		{func(r *cairnv1.AttemptResult) { r.AttemptId = "" }, "result.attempt_id"},
		{func(r *cairnv1.AttemptResult) { r.FencingToken = 0 }, "result.fencing_token"},
		{func(r *cairnv1.AttemptResult) { r.Outcome = 0 }, "result.outcome"},
		{func(r *cairnv1.AttemptResult) { r.FailureKind = cairnv1.FailureKind_FAILURE_KIND_STALE }, "result.failure_kind"},
	} {
		bad := ok()
		c.mut(bad)
		if _, err := result(bad, "result"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v does not name %s", err, c.want)
		}
	}
	if r.NoRetry {
		t.Error("NoRetry set without no_retry")
	}
	noRetry := ok()
	noRetry.NoRetry = true
	if r, err := result(noRetry, "result"); err != nil || !r.NoRetry {
		t.Errorf("no_retry: %+v, %v", r, err)
	}
	noRetry.Outcome, noRetry.FailureKind, noRetry.ExitCode = cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED, 0, nil
	if r, err := result(noRetry, "result"); err != nil || r.NoRetry || !r.Succeeded {
		t.Errorf("no_retry on a success: %+v, %v", r, err)
	}
	big := ok()
	big.Output = make([]byte, model.MaxAttemptOutput+10)
	if r, _ := result(big, "result"); len(r.Output) != model.MaxAttemptOutput || !r.OutputTruncated {
		t.Errorf("oversized output kept %d bytes, truncated=%v", len(r.Output), r.OutputTruncated)
	}
}

func TestOutboundAssignment(t *testing.T) {
	a := &engine.Assignment{AttemptID: uuid.New(), RunID: uuid.New(), TaskID: "t", Workflow: "w", Number: 2, Token: 1<<32 | 7,
		IdempotencyKey: "k", Timeout: time.Minute, Spec: executor.Spec{Type: executor.TypeHTTP,
			HTTP: &executor.HTTPSpec{Method: "POST", URL: "http://x", ExpectStatus: []int{200, 204}}}}
	m := outbound(engine.Outbound{Assignment: a}, "s1", time.Second).GetAssignment()
	if m.GetAttempt() != 2 || m.GetFencingToken() != a.Token || m.GetTimeout().AsDuration() != time.Minute ||
		m.GetSpec().GetType() != cairnv1.TaskType_TASK_TYPE_HTTP || m.GetSpec().GetHttp().GetUrl() != "http://x" ||
		len(m.GetSpec().GetHttp().GetExpectStatus()) != 2 || m.GetRunId() != a.RunID.String() {
		t.Fatalf("assignment %v", m)
	}
	w := outbound(engine.Outbound{Welcome: &engine.Welcome{Epoch: 9, Rejected: []engine.RunningAttempt{{AttemptID: "x", Token: 3}}}}, "s1", time.Second).GetWelcome()
	if w.GetEpoch() != 9 || w.GetSchedulerId() != "s1" || len(w.GetRejected()) != 1 || w.GetMaxOutputBytes() != model.MaxAttemptOutput {
		t.Fatalf("welcome %v", w)
	}
}
