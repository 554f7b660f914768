package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// poison is an input that adds a group PostgreSQL can never commit (a NUL byte in a text
// column), to test that one poison group cannot block the engine.
type poison struct{ run uuid.UUID }

func (in poison) handle(e *Engine) {
	g := e.tx.group(in.run, store.AppendEvent{Event: model.Event{RunID: in.run, Kind: model.EventNote, Message: "poison\x00"}})
	g.close()
}

// InjectPoison queues a poison group for run.
func (e *Engine) InjectPoison(ctx context.Context, run uuid.UUID) error {
	return e.send(ctx, poison{run: run})
}

// SetAfterCommit makes e call f on its loop after each commit of a non-empty batch (before
// the next batch starts). Call it before Run.
func SetAfterCommit(e *Engine, f func()) { e.afterCommit = f }

// QueuedInputs returns how many inputs wait on e's input channel.
func QueuedInputs(e *Engine) int { return len(e.in) }

// poisonedResult applies a worker's result in memory in a group that PostgreSQL can never
// commit, as a result whose write fails for good would.
type poisonedResult struct {
	sess *Session
	res  Result
}

func (in poisonedResult) handle(e *Engine) {
	ref := e.tokens[in.res.Token]
	g := e.tx.group(ref.run.run.ID)
	e.applyResult(g, in.res, in.sess.WorkerID)
	g.add(store.AppendEvent{Event: model.Event{RunID: ref.run.run.ID, Kind: model.EventNote, Message: "poison\x00"}})
	g.close()
}

// InjectPoisonedResult hands the engine r (of an attempt it knows) in a group that fails.
func (e *Engine) InjectPoisonedResult(ctx context.Context, s *Session, r Result) error {
	return e.send(ctx, poisonedResult{sess: s, res: r})
}
