package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/mask"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

// Secrets. An assignment whose spec references secrets lists them (name, placeholder). Just
// before running it the worker asks the leader for the values over its stream
// (SecretsRequest), puts them in the spec (taskspec.ResolveSecrets: only the listed
// placeholders, only in env values and the HTTP url, headers and body), masks them in the
// attempt's result (executor.Attempt.Redact) and in the worker's own logs (the Registry
// behind the logger's mask.Handler) while the attempt runs, and forgets them when it ends.
// Values are never written to disk, never logged and never sent back.

// Resolution timing.
const (
	// secretsTimeout bounds the resolution of one attempt's secrets, every try included. The
	// leader's own deadline for the attempt (its timeout plus the attempt grace, 30 s by
	// default) runs meanwhile.
	secretsTimeout = 20 * time.Second
	// secretsTry is how long one request waits for its answer before it is sent again (on
	// the current stream: a request is lost with a stream that breaks).
	secretsTry = 5 * time.Second
)

// ErrSecrets is wrapped by every failure to resolve an attempt's secrets.
var ErrSecrets = errors.New("cannot resolve the attempt's secrets")

// secretRefs converts the assignment's secret references.
func secretRefs(a *cairnv1.Assignment) []dag.SecretRef {
	if len(a.GetSecrets()) == 0 {
		return nil
	}
	out := make([]dag.SecretRef, len(a.GetSecrets()))
	for i, r := range a.GetSecrets() {
		out[i] = dag.SecretRef{Name: r.GetName(), Placeholder: r.GetPlaceholder()}
	}
	return out
}

// withSecrets resolves the secrets at's spec references, puts them in at.Spec and sets
// at.Redact. It returns a release function to call once the attempt is over (it drops the
// values from the log masker), or the result the attempt fails with: a secret deleted since
// the workflow was applied fails it without retry (every attempt would fail the same way
// until someone sets it again), any other failure as an internal, retryable error.
func (w *Worker) withSecrets(ctx context.Context, a *attempt, at *executor.Attempt, refs []dag.SecretRef) (release func(), fail *executor.Result) {
	failed := func(kind executor.FailureKind, noRetry bool, err error) (func(), *executor.Result) {
		now := time.Now()
		return nil, &executor.Result{Failure: kind, NoRetry: noRetry, ExitCode: -1, Err: err, Error: err.Error(), Started: now, Finished: now}
	}
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		names = append(names, r.Name)
	}
	values, missing, err := w.fetchSecrets(ctx, a, names)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return failed(executor.FailureCancelled, false, fmt.Errorf("%w: %w", ErrSecrets, cause))
		}
		return failed(executor.FailureInternal, false, err)
	}
	defer clear(values)
	if len(missing) > 0 {
		// The error says which: secret "x" is not defined. The namespace is the run's.
		merr := &taskspec.MissingSecretsError{Names: missing}
		return failed(executor.FailureInternal, true, fmt.Errorf("%w: %w in namespace %s (deleted since the workflow was applied? set it, then retry the run)",
			ErrSecrets, merr, a.asg.GetNamespace()))
	}
	spec, resolved, err := taskspec.ResolveSecrets(at.Spec, refs, func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	})
	if err != nil {
		return failed(executor.FailureInternal, false, fmt.Errorf("%w: %w", ErrSecrets, err))
	}
	at.Spec = spec
	at.Redact = mask.New(resolved)
	return w.masks.Add(resolved...), nil
}

// fetchSecrets asks the leader for the named secrets of a's attempt, on whatever stream is
// current, until it answers, the attempt is stopped, or secretsTimeout passes. It returns
// the values and the names that do not exist.
func (w *Worker) fetchSecrets(ctx context.Context, a *attempt, names []string) (map[string]string, []string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, secretsTimeout,
		fmt.Errorf("%w: the leader did not answer within %v", ErrSecrets, secretsTimeout))
	defer cancel()
	var last string
	for try := 1; ; try++ {
		resp, err := w.askSecrets(ctx, a, names)
		switch {
		case err != nil:
			if last != "" {
				return nil, nil, fmt.Errorf("%w (last answer: %s)", context.Cause(ctx), last)
			}
			return nil, nil, context.Cause(ctx)
		case resp == nil: // no answer on that stream: ask again
			continue
		case resp.GetError() != "" && resp.GetRetryable():
			last = resp.GetError()
			a.log.Warn("the leader cannot give the attempt's secrets yet; asking again", slog.Int("try", try), slog.String("reason", last))
			select {
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("%w (last answer: %s)", context.Cause(ctx), last)
			case <-time.After(min(time.Duration(try)*200*time.Millisecond, 2*time.Second)):
			}
			continue
		case resp.GetError() != "":
			return nil, nil, fmt.Errorf("%w: %s", ErrSecrets, resp.GetError())
		}
		values := make(map[string]string, len(resp.GetSecrets()))
		for _, s := range resp.GetSecrets() {
			values[s.GetName()] = s.GetValue()
		}
		var missing []string
		for _, n := range names {
			if _, ok := values[n]; !ok && !slices.Contains(missing, n) {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 && len(resp.GetMissing()) == 0 {
			clear(values)
			return nil, nil, fmt.Errorf("%w: the leader's answer lacks %s", ErrSecrets, strings.Join(missing, ", "))
		}
		return values, missing, nil
	}
}

// askSecrets sends one request on the current welcomed stream and waits for its answer: the
// response, nil when the stream changed or secretsTry passed without one (ask again), or an
// error when ctx ends.
func (w *Worker) askSecrets(ctx context.Context, a *attempt, names []string) (*cairnv1.SecretsResponse, error) {
	id := a.asg.GetAttemptId() + "/" + rand.Text()[:12]
	reply := make(chan *cairnv1.SecretsResponse, 1)
	var s *session
	for s == nil {
		w.mu.Lock()
		if w.sess != nil && w.sess.welcomed {
			s = w.sess
			w.secretWaits[id] = reply
			s.send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_SecretsRequest{SecretsRequest: &cairnv1.SecretsRequest{
				RequestId: id, AttemptId: a.asg.GetAttemptId(), FencingToken: a.asg.GetFencingToken(), Names: names}}})
		}
		changed := w.changed
		w.mu.Unlock()
		if s != nil {
			break
		}
		select { // no stream: wait for one
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() {
		w.mu.Lock()
		delete(w.secretWaits, id)
		w.mu.Unlock()
	}()
	try := time.NewTimer(secretsTry)
	defer try.Stop()
	for {
		w.mu.Lock()
		current, changed := w.sess == s, w.changed
		w.mu.Unlock()
		if !current {
			return nil, nil
		}
		select {
		case resp := <-reply:
			return resp, nil
		case <-changed:
		case <-try.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// secretsResponse hands a leader's answer to the attempt waiting for it.
func (w *Worker) secretsResponse(r *cairnv1.SecretsResponse) {
	w.mu.Lock()
	ch, ok := w.secretWaits[r.GetRequestId()]
	delete(w.secretWaits, r.GetRequestId())
	w.mu.Unlock()
	if !ok {
		w.log.Debug("answer to a secrets request nobody waits for (answered late, or sent again)", slog.String("attempt_id", r.GetAttemptId()))
		return
	}
	ch <- r // buffered; one answer per request id
}
