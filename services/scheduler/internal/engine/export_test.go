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
