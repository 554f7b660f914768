package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

// Errors of run retry, dead-letter replay and purge.
var (
	// ErrRunActive: a run retry was asked for a run that has not ended.
	ErrRunActive = errors.New("engine: the run has not ended; cancel it or wait for it")
	// ErrNothingToRetry: the run has no failed, dead-lettered, upstream-failed or cancelled task.
	ErrNothingToRetry = errors.New("engine: the run has no failed, dead-lettered, upstream-failed or cancelled task to retry")
	// ErrAlreadyReplayed: the dead letter was replayed already (each is replayed at most once).
	ErrAlreadyReplayed = errors.New("engine: the dead letter was replayed already")
)

// openRun returns the state of a run of namespace ns, loading it from PostgreSQL if the
// engine does not hold it (a run that ended). The state is not installed. A run of another
// namespace is ErrNotFound.
func (e *Engine) openRun(ns string, id uuid.UUID) (*runState, error) {
	if rs, ok := e.runs[id]; ok {
		if rs.run.Namespace != ns {
			return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		return rs, nil
	}
	d, err := e.cfg.Store.GetRun(e.ctx, ns, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rs, err := e.load(e.ctx, d)
	if err != nil {
		return nil, err
	}
	for i := range rs.tasks {
		if s := rs.tasks[i].state; s.Terminal() {
			rs.terminal++
		} else if countsActive(s) {
			rs.active++
		}
	}
	return rs, nil
}

// reopen re-runs the given tasks of a run and, Airflow "clear" style, every finished task
// downstream of them: all go back to PENDING with a fresh retry budget (attempt numbers go
// on), the run goes back to RUNNING, and the trigger rules decide what is queued now.
func (e *Engine) reopen(g *grp, rs *runState, roots []int, why string) {
	set := make([]bool, len(rs.tasks))
	for _, r := range roots {
		set[r] = true
		for _, d := range rs.wf.Graph.Descendants(r) {
			if rs.tasks[d].state.Terminal() {
				set[d] = true
			}
		}
	}
	for _, i := range rs.wf.Graph.Order() {
		t := &rs.tasks[i]
		if !set[i] || !t.state.Terminal() {
			continue
		}
		id := rs.wf.Tasks[i].ID
		g.add(store.TaskTransition{RunID: rs.run.ID, TaskID: id, From: t.state, Attempt: t.attempt, To: model.TaskPending, ResetBase: true},
			taskEvent(rs.run.ID, id, t.state, model.TaskPending, t.attempt, why))
		t.state, t.base, t.lost, t.worker = model.TaskPending, int32(t.attempt), 0, ""
		delete(rs.errs, i)
		rs.terminal--
	}
	if rs.run.State.Terminal() {
		g.add(store.RunTransition{RunID: rs.run.ID, From: rs.run.State, To: model.RunRunning},
			runEvent(rs.run.ID, rs.run.State, model.RunRunning, why))
		rs.run.State = model.RunRunning
	}
	e.runs[rs.run.ID] = rs
	// Decisions still deferred were made before these tasks re-opened and may be stale:
	// Ready decides every PENDING task again from the outcomes as they are now.
	rs.dropDeferred()
	e.decide(g, rs, rs.wf.Graph.Ready(rs.outcome))
	e.finishIfDone(g, rs)
}

type retryRun struct {
	ns    string
	id    uuid.UUID
	reply chan error
}

func (in retryRun) handle(e *Engine) {
	fail := func(err error) { e.tx.after = append(e.tx.after, func() { in.reply <- err }) }
	rs, err := e.openRun(in.ns, in.id)
	if err != nil {
		fail(err)
		return
	}
	if !rs.run.State.Terminal() {
		fail(ErrRunActive)
		return
	}
	var roots []int
	for i := range rs.tasks {
		switch rs.tasks[i].state {
		case model.TaskFailed, model.TaskDeadLettered, model.TaskUpstreamFailed, model.TaskCancelled:
			roots = append(roots, i)
		}
	}
	if len(roots) == 0 {
		fail(ErrNothingToRetry)
		return
	}
	open, err := e.cfg.Store.OpenDeadLetters(e.ctx, rs.run.Namespace, rs.run.ID)
	if err != nil {
		fail(err)
		return
	}
	g := e.tx.group(rs.run.ID)
	for _, i := range roots {
		if id, ok := open[rs.wf.Tasks[i].ID]; ok {
			g.add(store.MarkReplayed{ID: id}) // the retry supersedes the open dead letter
		}
	}
	e.reopen(g, rs, roots, "run retry")
	g.then(func() { in.reply <- nil })
	g.failed(func(err error) { in.reply <- fmt.Errorf("retry run %s: %w", in.id, err) })
	g.close()
}

// RetryRun re-runs a FAILED or CANCELLED run's failed, dead-lettered, upstream-failed and
// cancelled tasks, and whatever finished downstream of them; succeeded tasks elsewhere are
// kept. It returns once that is durable; ErrNotFound for a run not in namespace ns.
func (e *Engine) RetryRun(ctx context.Context, ns string, id uuid.UUID) error {
	reply := make(chan error, 1)
	err, callErr := call(ctx, e, retryRun{ns: ns, id: id, reply: reply}, reply)
	if callErr != nil {
		return callErr
	}
	return err
}

type replay struct {
	ns    string
	id    uuid.UUID
	reply chan replayReply
}

type replayReply struct {
	run uuid.UUID
	err error
}

func (in replay) handle(e *Engine) {
	fail := func(err error) { e.tx.after = append(e.tx.after, func() { in.reply <- replayReply{err: err} }) }
	dl, err := e.cfg.Store.GetDeadLetter(e.ctx, in.ns, in.id)
	if errors.Is(err, store.ErrNotFound) {
		fail(fmt.Errorf("dead letter %s: %w", in.id, ErrNotFound))
		return
	}
	if err != nil {
		fail(err)
		return
	}
	if !dl.ReplayedAt.IsZero() {
		fail(ErrAlreadyReplayed)
		return
	}
	rs, err := e.openRun(in.ns, dl.RunID)
	if err != nil {
		fail(err)
		return
	}
	i, ok := rs.wf.Graph.Index(dl.TaskID)
	if !ok {
		fail(fmt.Errorf("dead letter %s names task %q, which its run's workflow does not have", in.id, dl.TaskID))
		return
	}
	if s := rs.tasks[i].state; s != model.TaskDeadLettered {
		// Replayed (or retried) in this very batch, or retried with the run since.
		fail(fmt.Errorf("%w (task %s is %s)", ErrAlreadyReplayed, dl.TaskID, s))
		return
	}
	g := e.tx.group(rs.run.ID)
	g.add(store.MarkReplayed{ID: in.id},
		store.AppendEvent{Event: model.Event{RunID: rs.run.ID, TaskID: dl.TaskID, Kind: model.EventReplayed,
			Attempt: rs.tasks[i].attempt, Message: "dead letter " + in.id.String() + " replayed"}})
	e.reopen(g, rs, []int{i}, "dead letter replayed")
	runID := rs.run.ID
	g.then(func() { in.reply <- replayReply{run: runID} })
	g.failed(func(err error) {
		if errors.Is(err, store.ErrConflict) {
			err = fmt.Errorf("%w: %v", ErrAlreadyReplayed, err)
		}
		in.reply <- replayReply{err: err}
	})
	g.close()
}

// ReplayDeadLetter puts a dead-lettered task of namespace ns back into its run with a fresh
// retry budget; the run resumes (downstream tasks run again after it). Of concurrent replays
// of one dead letter exactly one succeeds; the others get ErrAlreadyReplayed. It returns the
// run's id; ErrNotFound for a dead letter not in ns.
func (e *Engine) ReplayDeadLetter(ctx context.Context, ns string, id uuid.UUID) (uuid.UUID, error) {
	reply := make(chan replayReply, 1)
	r, err := call(ctx, e, replay{ns: ns, id: id, reply: reply}, reply)
	if err != nil {
		return uuid.Nil, err
	}
	return r.run, r.err
}

type purge struct {
	ns    string
	id    uuid.UUID
	reply chan error
}

func (in purge) handle(e *Engine) {
	g := e.tx.group(uuid.Nil, store.DeleteDeadLetter{Namespace: in.ns, ID: in.id})
	g.then(func() { in.reply <- nil })
	g.failed(func(err error) {
		if errors.Is(err, store.ErrConflict) {
			err = fmt.Errorf("dead letter %s: %w", in.id, ErrNotFound)
		}
		in.reply <- err
	})
	g.close()
}

// PurgeDeadLetter deletes a dead letter of namespace ns without replaying it; its task stays
// DEAD_LETTERED. ErrNotFound for a dead letter not in ns.
func (e *Engine) PurgeDeadLetter(ctx context.Context, ns string, id uuid.UUID) error {
	reply := make(chan error, 1)
	err, callErr := call(ctx, e, purge{ns: ns, id: id, reply: reply}, reply)
	if callErr != nil {
		return callErr
	}
	return err
}
