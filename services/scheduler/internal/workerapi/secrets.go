package workerapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// Secrets over the stream. A worker asks for an attempt's secret values just before running
// it (SecretsRequest); the stream handler answers (SecretsResponse) in a goroutine of its
// own, never in the engine's loop, which it only asks — from memory — whether the attempt is
// the worker's and which secrets its task references (engine.AttemptSecrets). The values are
// read and unsealed by the SecretSource (the leader's store and keyring) and go out on this
// stream only: they are never logged, never put in an Assignment, never kept.

// SecretSource reads and unseals secret values; the scheduler binds it to its store and
// keyring.
type SecretSource interface {
	// Values returns the values of those of names that namespace ns holds; a name without a
	// secret is absent from the map. An error wrapping ErrSecretsTransient is worth asking
	// again (the database is unreachable); any other is not (no keyring, a value that does
	// not decrypt). No error may contain a value.
	Values(ctx context.Context, ns string, names []string) (map[string]string, error)
}

// ErrSecretsTransient marks a SecretSource failure the worker should retry.
var ErrSecretsTransient = errors.New("secrets temporarily unavailable")

// Limits of a SecretsRequest.
const (
	// MaxSecretsPerRequest bounds the names of one request.
	MaxSecretsPerRequest = 128
)

// secretsServer answers one stream's SecretsRequests.
type secretsServer struct {
	src  SecretSource
	eng  *engine.Engine
	sess *engine.Session
	log  *slog.Logger
	out  chan *cairnv1.SchedulerMessage // drained by the stream's sender
	sem  chan struct{}                  // requests being answered
	wg   sync.WaitGroup
}

func newSecretsServer(src SecretSource, eng *engine.Engine, sess *engine.Session, log *slog.Logger) *secretsServer {
	n := 2 * sess.Capacity
	return &secretsServer{src: src, eng: eng, sess: sess, log: log,
		out: make(chan *cairnv1.SchedulerMessage, n), sem: make(chan struct{}, n)}
}

// checkSecretsRequest validates a request's shape; a malformed one ends the stream like any
// other protocol violation.
func checkSecretsRequest(r *cairnv1.SecretsRequest) error {
	switch {
	case r.GetRequestId() == "" || len(r.GetRequestId()) > MaxIDLength:
		return invalid("secrets_request.request_id must be 1..%d bytes", MaxIDLength)
	case r.GetAttemptId() == "" || len(r.GetAttemptId()) > MaxIDLength:
		return invalid("secrets_request.attempt_id must be 1..%d bytes", MaxIDLength)
	case r.GetFencingToken() <= 0:
		return invalid("secrets_request.fencing_token is %d, must be positive", r.GetFencingToken())
	case len(r.GetNames()) == 0 || len(r.GetNames()) > MaxSecretsPerRequest:
		return invalid("secrets_request.names lists %d names, want 1..%d", len(r.GetNames()), MaxSecretsPerRequest)
	}
	for i, n := range r.GetNames() {
		if !dag.ValidSecretName(n) {
			return invalid("secrets_request.names[%d] %q is not a secret name", i, n)
		}
	}
	return nil
}

// request starts answering r in a goroutine (called from the stream's reader, which must not
// wait for the database). Too many requests at once are refused as retryable.
func (s *secretsServer) request(ctx context.Context, r *cairnv1.SecretsRequest) error {
	if err := checkSecretsRequest(r); err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.reply(ctx, &cairnv1.SecretsResponse{RequestId: r.GetRequestId(), AttemptId: r.GetAttemptId(),
			Error: "too many secrets requests in flight on this stream", Retryable: true})
		return nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		s.reply(ctx, s.answer(ctx, r))
	}()
	return nil
}

// reply hands a response to the sender, unless the stream ends first.
func (s *secretsServer) reply(ctx context.Context, resp *cairnv1.SecretsResponse) {
	select {
	case s.out <- &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_SecretsResponse{SecretsResponse: resp}}:
	case <-ctx.Done():
	}
}

// wait waits for the requests being answered (the stream's context has ended).
func (s *secretsServer) wait() { s.wg.Wait() }

// answer resolves one request: the engine says whether the attempt is this worker's and
// which names its task references; the source reads and unseals those values.
func (s *secretsServer) answer(ctx context.Context, r *cairnv1.SecretsRequest) *cairnv1.SecretsResponse {
	resp := &cairnv1.SecretsResponse{RequestId: r.GetRequestId(), AttemptId: r.GetAttemptId()}
	log := s.log.With("attempt_id", r.GetAttemptId(), "token", r.GetFencingToken())
	info, err := s.eng.AttemptSecrets(ctx, s.sess, r.GetAttemptId(), r.GetFencingToken())
	switch {
	case errors.Is(err, engine.ErrNotYourAttempt):
		log.Warn("secrets request refused", "err", err)
		resp.Error = "refused: " + err.Error()
		return resp
	case err != nil:
		resp.Error, resp.Retryable = "the leader cannot answer now: "+err.Error(), true
		return resp
	}
	names := slices.Clone(r.GetNames())
	slices.Sort(names)
	names = slices.Compact(names)
	var stray []string
	for _, n := range names {
		if !slices.Contains(info.Names, n) {
			stray = append(stray, n)
		}
	}
	if len(stray) > 0 {
		log.Warn("secrets request for names the task does not reference refused", "task_id", info.TaskID, "names", stray)
		resp.Error = fmt.Sprintf("refused: task %s does not reference secret(s) %q", info.TaskID, stray)
		return resp
	}
	if s.src == nil {
		resp.Error = "this leader cannot resolve secrets (no secret source configured)"
		return resp
	}
	values, err := s.src.Values(ctx, info.Namespace, names)
	if err != nil {
		resp.Error, resp.Retryable = fmt.Sprintf("namespace %s: %v", info.Namespace, err), errors.Is(err, ErrSecretsTransient)
		log.Warn("cannot resolve an attempt's secrets", "namespace", info.Namespace, "err", err, "retryable", resp.Retryable)
		return resp
	}
	for _, n := range names {
		if v, ok := values[n]; ok {
			resp.Secrets = append(resp.Secrets, &cairnv1.SecretValue{Name: n, Value: v})
		} else {
			resp.Missing = append(resp.Missing, n)
		}
	}
	clear(values)
	log.Debug("secrets resolved for an attempt", "namespace", info.Namespace, "run_id", info.RunID, "task_id", info.TaskID,
		"names", names, "missing", resp.Missing)
	return resp
}
