package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Secrets. The engine never holds a secret's value and never reads one: a worker's request
// for the values of an attempt is answered by its stream handler, outside the loop, after
// asking the engine (AttemptSecrets, from memory) whether that attempt is the worker's and
// which secrets its task may use.

// ErrNotYourAttempt refuses a secrets request for an attempt that is not currently assigned to
// the asking worker on its current stream (another worker's, finished, superseded, or a
// token the leader never issued).
var ErrNotYourAttempt = errors.New("engine: the attempt is not assigned to this worker")

// AttemptSecrets is what the engine knows about an attempt whose secrets a worker asks for.
type AttemptSecrets struct {
	Namespace string
	Workflow  string
	RunID     uuid.UUID
	TaskID    string
	// Names are the secrets the task's definition references (every branch of its
	// templates): the only ones its attempts may be given. Sorted.
	Names []string
}

type attemptSecrets struct {
	sess      *Session
	attemptID string
	token     int64
	reply     chan attemptSecretsReply
}

type attemptSecretsReply struct {
	info AttemptSecrets
	err  error
}

func (in attemptSecrets) handle(e *Engine) {
	in.reply <- e.attemptSecrets(in)
}

func (e *Engine) attemptSecrets(in attemptSecrets) attemptSecretsReply {
	refuse := func(why string) attemptSecretsReply {
		return attemptSecretsReply{err: fmt.Errorf("%w: attempt %s (token %d) %s", ErrNotYourAttempt, in.attemptID, in.token, why)}
	}
	if w := e.workers[in.sess.WorkerID]; w == nil || w.sess != in.sess {
		return refuse("was asked about on a stream that is not the worker's current one")
	}
	ref, ok := e.tokens[in.token]
	if !ok {
		return refuse("is not an active attempt of this leader")
	}
	t := ref.task()
	switch {
	case t.token != in.token || !t.state.Active():
		return refuse("is no longer the task's current attempt")
	case t.worker != in.sess.WorkerID:
		return refuse("is assigned to another worker")
	case t.attemptID != uuid.Nil && t.attemptID.String() != in.attemptID:
		return refuse("does not have that fencing token")
	}
	rs := ref.run
	return attemptSecretsReply{info: AttemptSecrets{Namespace: rs.run.Namespace, Workflow: rs.run.Workflow, RunID: rs.run.ID,
		TaskID: ref.id(), Names: slices.Clone(rs.wf.Tasks[ref.idx].Secrets)}}
}

// AttemptSecrets answers, from the engine's memory, whether the attempt (id and fencing
// token) is currently assigned to the worker of session s on that very stream, and if so
// which secrets its task references and in which namespace; otherwise ErrNotYourAttempt. It
// reads nothing from PostgreSQL: the values are read by the caller, outside the loop.
func (e *Engine) AttemptSecrets(ctx context.Context, s *Session, attemptID string, token int64) (AttemptSecrets, error) {
	reply := make(chan attemptSecretsReply, 1)
	r, err := call(ctx, e, attemptSecrets{sess: s, attemptID: attemptID, token: token, reply: reply}, reply)
	if err != nil {
		return AttemptSecrets{}, err
	}
	return r.info, r.err
}
