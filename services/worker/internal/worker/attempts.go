package worker

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/executor"
)

// newResultID names one result: the attempt id (for logs) and a random suffix, so that no
// two results, from any worker, share an id.
func newResultID(attemptID string) string {
	return attemptID + "/" + rand.Text()[:16]
}

// outcome is the metric label of a result.
func outcome(r *cairnv1.AttemptResult) string {
	if r.GetOutcome() == cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED {
		return "succeeded"
	}
	switch r.GetFailureKind() {
	case cairnv1.FailureKind_FAILURE_KIND_TIMEOUT:
		return "timeout"
	case cairnv1.FailureKind_FAILURE_KIND_EXIT_CODE:
		return "exit_code"
	case cairnv1.FailureKind_FAILURE_KIND_UNEXPECTED_STATUS:
		return "unexpected_status"
	case cairnv1.FailureKind_FAILURE_KIND_CONNECTION:
		return "connection"
	case cairnv1.FailureKind_FAILURE_KIND_CANCELLED:
		return "cancelled"
	default:
		return "internal"
	}
}

// assign handles one Assignment received on s.
//
//   - Without a credit to cover it (a leader bug), it is handed back at once with a result
//     saying so, sent once and not kept: no slot holds it.
//   - A duplicate of an attempt this worker holds is ignored, and its credit granted again.
//   - While draining (or after losing the lease) it is handed back: a CANCELLED result kept in
//     the outbox like any other, which the leader re-queues without blaming the task.
//   - A malformed assignment fails with an INTERNAL result.
//   - Otherwise it takes the slot its credit promised, AttemptStarted is sent and it runs in
//     its own goroutine.
func (w *Worker) assign(s *session, a *cairnv1.Assignment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess != s {
		return
	}
	log := w.log.With(slog.String("run_id", a.GetRunId()), slog.String("task_id", a.GetTaskId()),
		slog.Int("attempt", int(a.GetAttempt())), slog.String("attempt_id", a.GetAttemptId()),
		slog.String("namespace", a.GetNamespace()), slog.String("workflow", a.GetWorkflow()))
	now := time.Now()
	if w.credits == 0 {
		reason := fmt.Sprintf("worker %s has no credit for attempt %s: the leader sent more assignments than the worker granted slots (capacity %d, %d running, %d results awaiting acknowledgement); handed back without running",
			w.cfg.ID, a.GetAttemptId(), w.cfg.Concurrency, len(w.running), len(w.outbox))
		log.Error("assignment without credit; handing it back", slog.String("reason", reason))
		w.metrics.attempts(context.Background(), "rejected")
		s.send(resultMsg(handBack(newResultID(a.GetAttemptId()), a, reason, now)))
		return
	}
	w.credits--
	if w.holdsLocked(a.GetAttemptId()) {
		log.Warn("duplicate assignment of an attempt this worker already holds; ignored")
		w.grantLocked()
		return
	}
	if w.draining || w.leaseLost {
		reason := fmt.Sprintf("worker %s is draining: attempt handed back without running", w.cfg.ID)
		log.Info("handing back an assignment received while draining")
		w.keepLocked(handBack(newResultID(a.GetAttemptId()), a, reason, now))
		w.metrics.attempts(context.Background(), "handed_back")
		return
	}
	at, err := toAttempt(a)
	if err != nil {
		log.Error("malformed assignment", slog.Any("error", err))
		w.keepLocked(badAssignmentResult(newResultID(a.GetAttemptId()), a, err, now))
		w.metrics.attempts(context.Background(), "internal")
		w.grantLocked()
		return
	}
	ctx, cancel := context.WithCancelCause(w.attemptsCtx)
	att := &attempt{asg: a, typ: at.Spec.Type, cancel: cancel, started: now, log: log}
	w.running[a.GetAttemptId()] = att
	s.send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Started{Started: &cairnv1.AttemptStarted{
		AttemptId: a.GetAttemptId(), FencingToken: a.GetFencingToken(), StartedAt: timestamppb.New(now)}}})
	log.Info("attempt started", slog.String("type", string(at.Spec.Type)), slog.Duration("timeout", at.Timeout))
	w.notifyLocked()
	w.attemptsWG.Add(1)
	go func() {
		defer w.attemptsWG.Done()
		defer cancel(nil)
		if refs := secretRefs(a); len(refs) > 0 {
			// The values are asked for now, put in the spec and masked until the result is kept.
			release, fail := w.withSecrets(ctx, att, at, refs)
			if fail != nil {
				w.finish(att, fail)
				return
			}
			defer release()
		}
		res := w.exec.Execute(ctx, at)
		w.finish(att, res)
	}()
}

// holdsLocked reports whether the attempt runs here or its result awaits acknowledgement.
func (w *Worker) holdsLocked(attemptID string) bool {
	if _, ok := w.running[attemptID]; ok {
		return true
	}
	return slices.ContainsFunc(w.outbox, func(r *cairnv1.AttemptResult) bool { return r.GetAttemptId() == attemptID })
}

// keepLocked puts a result in the outbox and sends it on the current stream, if any.
func (w *Worker) keepLocked(r *cairnv1.AttemptResult) {
	w.outbox = append(w.outbox, r)
	if w.sess != nil {
		w.sess.send(resultMsg(r))
	}
	w.notifyLocked()
}

// finish records how an attempt ended.
func (w *Worker) finish(a *attempt, res *executor.Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running, a.asg.GetAttemptId())
	if a.discard {
		a.log.Info("attempt stopped after the leader rejected it; result dropped")
		w.metrics.attempts(context.Background(), "rejected")
		w.grantLocked()
		w.notifyLocked()
		return
	}
	r := toResult(newResultID(a.asg.GetAttemptId()), a.asg, a.typ, res, w.maxOutput)
	w.keepLocked(r)
	// The slot is free once its result is in the outbox (while the outbox has room): the
	// next assignment need not wait for the leader to commit and acknowledge this result.
	w.grantLocked()
	w.metrics.attempts(context.Background(), outcome(r))
	attrs := []any{slog.String("outcome", outcome(r)), slog.Duration("took", res.Finished.Sub(res.Started)),
		slog.String("result_id", r.GetResultId())}
	if r.ExitCode != nil {
		attrs = append(attrs, slog.Int("exit_code", int(r.GetExitCode())))
	}
	if r.HttpStatus != nil {
		attrs = append(attrs, slog.Int("http_status", int(r.GetHttpStatus())))
	}
	if res.Succeeded {
		a.log.Info("attempt finished", attrs...)
	} else {
		a.log.Warn("attempt failed", append(attrs, slog.String("error", r.GetError()))...)
	}
}

// ack forgets an acknowledged result and grants the slot it held, if it held one.
func (w *Worker) ack(ack *cairnv1.ResultAck) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.outbox, func(r *cairnv1.AttemptResult) bool { return r.GetResultId() == ack.GetResultId() })
	if i < 0 {
		w.log.Debug("acknowledgement of an unknown result (already acknowledged)", slog.String("result_id", ack.GetResultId()))
		return
	}
	r := w.outbox[i]
	w.outbox = slices.Delete(w.outbox, i, i+1)
	log := w.log.With(slog.String("run_id", r.GetRunId()), slog.String("task_id", r.GetTaskId()),
		slog.String("attempt_id", r.GetAttemptId()), slog.String("result_id", r.GetResultId()))
	if ack.GetAccepted() {
		log.Debug("result acknowledged")
	} else {
		log.Info("leader recorded the result without applying it", slog.String("reason", ack.GetReason()))
	}
	w.grantLocked()
	w.notifyLocked()
}

// cancelAttempt stops an attempt on the leader's request; its result (CANCELLED) follows.
func (w *Worker) cancelAttempt(c *cairnv1.CancelAttempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.running[c.GetAttemptId()]
	if a == nil {
		w.log.Debug("cancel for an attempt not running here", slog.String("attempt_id", c.GetAttemptId()))
		return
	}
	if a.asg.GetFencingToken() != c.GetFencingToken() {
		a.log.Warn("ignoring an outdated cancel", slog.Int64("token", a.asg.GetFencingToken()), slog.Int64("cancel_token", c.GetFencingToken()))
		return
	}
	a.log.Info("leader cancels the attempt", slog.String("reason", c.GetReason()))
	reason := c.GetReason()
	if reason == "" {
		reason = "no reason given"
	}
	a.cancel(fmt.Errorf("%w: %s", ErrCancelledByLeader, reason))
}
