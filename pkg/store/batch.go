package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-io/cairn/pkg/model"
)

// Op is one write of a Batch: a single SQL statement that either applies or, when its
// compare-and-set condition does not hold, changes nothing and reports a conflict. The ops
// are TaskTransition, InsertAttempt, StartAttempt, FinishAttempt, RunTransition, InsertRun,
// AppendEvent, InsertDeadLetter, MarkReplayed, PutSchedule, DeleteSchedule and
// AdvanceSchedule.
type Op interface {
	validate() error
	statement() (sql string, args []any)
	// check turns the number of affected rows into nil (applied) or a *ConflictError.
	check(rows int64) error
}

// actualReader is implemented by ops that can say what they found after a conflict.
type actualReader interface {
	readActual(ctx context.Context, tx querier) (string, error)
}

// staleChecker is implemented by ops carrying a worker's result: after their group fails,
// it decides whether the result was stale and, if so, records it.
type staleChecker interface {
	checkStale(ctx context.Context, tx querier) (error, error)
}

// Batch collects groups of operations applied in one transaction by Store.Apply. A group
// is all-or-nothing: if any of its ops conflicts, none of them is applied. Groups are
// independent: a conflict in one does not stop the others. The typical group is everything
// one input implies (a result: finish the attempt, transition the task, append an event,
// maybe insert a dead letter).
type Batch struct {
	groups [][]Op
}

// Add appends one all-or-nothing group and returns its index in Apply's results.
func (b *Batch) Add(ops ...Op) int {
	b.groups = append(b.groups, ops)
	return len(b.groups) - 1
}

// Len returns the number of groups.
func (b *Batch) Len() int { return len(b.groups) }

// Apply executes every group of b in one transaction under the leader epoch.
//
// The transaction's first statement locks the leadership row FOR SHARE and compares the
// epoch: a mismatch returns ErrStaleEpoch and nothing changes. Groups are then sent in a
// pipeline (pgx.Batch, one round trip).
//
// Conflicts are rare (the leader is the only writer), so the first attempt sends every group
// without savepoints: a single-op group whose CAS fails changed nothing, and the rest go on.
// That attempt is set-based (batchset.go): the task transitions, attempt inserts, starts and
// finishes of a batch run as one statement per kind wherever that gives exactly the result of
// applying the ops in order, and the events (AppendEvent ops, which cannot conflict) are
// inserted by one multi-row statement at the end of the pipeline, in the order of their groups.
// Only when an op of a multi-op group conflicts (some of its ops may have applied) is that
// transaction rolled back and the batch applied again in a second transaction in which every
// multi-op group runs under a savepoint: a group whose CAS fails is rolled back to its
// savepoint and the groups after it are re-sent, so a conflict costs round trips, not
// correctness. Either way the outcome is the same.
//
// results[i] is nil when group i was applied, or an error matching ErrConflict or
// ErrStaleAttempt. Conflicts are not errors of the transaction: the rest commits. err is
// non-nil (and nothing was committed) for a stale epoch, an invalid op (ErrInvalidArgument),
// or a database failure; callers may retry the whole batch after a database failure.
func (s *Store) Apply(ctx context.Context, epoch int64, b *Batch) (results []error, err error) {
	for i, g := range b.groups {
		if len(g) == 0 {
			return nil, fmt.Errorf("apply: group %d: %w", i, invalidf("empty group"))
		}
		for j, op := range g {
			if err := op.validate(); err != nil {
				return nil, fmt.Errorf("apply: group %d op %d (%T): %w", i, j, op, err)
			}
		}
	}
	results, err = s.applyPipelined(ctx, epoch, b.groups)
	if errors.Is(err, errGroupConflict) {
		s.savepointRetries.Add(1)
		err = s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
			results = make([]error, len(b.groups))
			return applyGroups(ctx, tx, b.groups, results)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("apply batch of %d groups: %w", len(b.groups), err)
	}
	return results, nil
}

// errGroupConflict aborts the savepoint-free attempt of a batch: an op of a multi-op group
// conflicted, so the group may have partially applied.
var errGroupConflict = errors.New("a multi-op group conflicted; applying the batch again with savepoints")

// querier is what the batch code needs of a transaction: a pgx.Tx, or a pooled connection
// inside the transaction applyPipelined began.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// applyPipelined is the first attempt of Apply in two round trips: BEGIN, the epoch check
// (the leadership row FOR SHARE, as leaderTx), the planner settings and every statement of
// the batch in one pipeline, then COMMIT — or ROLLBACK, when the epoch is stale, a multi-op
// group conflicted or anything failed. (leaderTx takes four: BEGIN, the check, the
// statements, COMMIT.) The epoch check runs before the writes, so a new leader's takeover
// still waits for this transaction; on a stale epoch the writes done in the meantime are
// rolled back.
func (s *Store) applyPipelined(ctx context.Context, epoch int64, groups [][]Op) ([]error, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection released inside a transaction (a failed ROLLBACK, a cancelled context) is
	// closed by the pool, which rolls the transaction back.
	defer conn.Release()
	results := make([]error, len(groups))
	if err := applyOptimistic(ctx, conn, epoch, groups, results); err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return nil, err
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" { // the transaction had failed: PostgreSQL rolled it back
		return nil, fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
	}
	return results, nil
}

// applyOptimistic queues BEGIN, the epoch check and the whole batch in one pipeline without
// savepoints, the hot op kinds set-based (see batchset.go), and reads the results. A
// conflict of a single-op group is recorded (and diagnosed); a conflict in a multi-op group
// returns errGroupConflict. The caller commits, or rolls back on any error.
func applyOptimistic(ctx context.Context, q querier, epoch int64, groups [][]Op, results []error) error {
	plan := planSet(groups)
	pb := &pgx.Batch{}
	pb.Queue("BEGIN")
	pb.Queue(epochSQL)
	// Every set statement joins its unnest(…) (at most a batch's rows) to a table by a unique
	// key; the right plan is always a nested loop over index lookups. Left free, the planner
	// hashes the whole table when it is small (task_runs of one 10,000-task run: 4 ms instead
	// of 0.3 ms per statement). SET LOCAL ends with the transaction.
	pb.Queue(`SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`)
	stmts := plan.statements()
	for _, st := range stmts {
		st.queue(pb)
	}
	if plan.events.n > 0 {
		q, args := plan.events.statement()
		pb.Queue(q, args...)
	}
	var failed []failure
	conflict := func(ref setRef, rows int64) error {
		cerr := ref.op.check(rows)
		if cerr == nil {
			return nil
		}
		if len(groups[ref.g]) > 1 {
			return errGroupConflict
		}
		results[ref.g] = cerr
		failed = append(failed, failure{ref.g, ref.j})
		return nil
	}
	br := q.SendBatch(ctx, pb)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("begin: %w", err)
	}
	if err := checkEpoch(br.QueryRow(), epoch); err != nil {
		_ = br.Close()
		return err
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("planner settings: %w", err)
	}
	for _, st := range stmts {
		affected, err := st.read(br)
		if err != nil {
			_ = br.Close()
			ref := st.refs[0]
			return fmt.Errorf("group %d op %d (%T, %d in the statement): %w", ref.g, ref.j, ref.op, len(st.refs), err)
		}
		for i, ref := range st.refs {
			if err := conflict(ref, affected[i]); err != nil {
				_ = br.Close()
				return err
			}
		}
	}
	if plan.events.n > 0 {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("append %d events: %w", plan.events.n, err)
		}
		if tag.RowsAffected() != int64(plan.events.n) {
			_ = br.Close()
			return fmt.Errorf("append %d events: %d inserted", plan.events.n, tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	for _, f := range failed {
		if err := diagnose(ctx, q, groups[f.group], f.op, &results[f.group]); err != nil {
			return fmt.Errorf("group %d: %w", f.group, err)
		}
	}
	return nil
}

// eventRows collects the AppendEvent ops of a savepoint-free batch, in order, for one
// multi-row insert at the end of its pipeline (events are a third of a batch's statements).
type eventRows struct {
	n        int
	at       pgtype.FlatArray[pgtype.Timestamptz]
	runID    pgtype.FlatArray[pgtype.UUID]
	taskID   []string
	kind     []string
	from, to []string
	attempt  []int32
	message  []string
}

func (r *eventRows) add(e model.Event) {
	r.n++
	r.at = append(r.at, pgtype.Timestamptz{Time: e.At, Valid: !e.At.IsZero()})
	r.runID = append(r.runID, pgUUID(e.RunID))
	r.taskID = append(r.taskID, e.TaskID)
	r.kind = append(r.kind, string(e.Kind))
	r.from = append(r.from, e.From)
	r.to = append(r.to, e.To)
	r.attempt = append(r.attempt, int32(e.Attempt))
	r.message = append(r.message, e.Message)
}

// statement inserts the rows in the order they were added (seq follows ORDER BY ord).
func (r *eventRows) statement() (string, []any) {
	return `INSERT INTO events (at, run_id, task_id, kind, from_state, to_state, attempt, message)
		SELECT COALESCE(e.at, now()), e.run_id, e.task_id, e.kind, e.from_state, e.to_state, e.attempt, e.message
		FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[])
			WITH ORDINALITY AS e (at, run_id, task_id, kind, from_state, to_state, attempt, message, ord)
		ORDER BY e.ord`,
		[]any{r.at, r.runID, r.taskID, r.kind, r.from, r.to, r.attempt, r.message}
}

// applyGroups applies the groups with a savepoint before each multi-op group.
func applyGroups(ctx context.Context, tx pgx.Tx, groups [][]Op, results []error) error {
	sp := 0 // savepoint names stay unique within the transaction
	for start := 0; start < len(groups); {
		base := sp
		pb := &pgx.Batch{}
		for g := start; g < len(groups); g++ {
			if len(groups[g]) > 1 {
				pb.Queue(fmt.Sprintf("SAVEPOINT g%d", base+g))
			}
			for _, op := range groups[g] {
				q, args := op.statement()
				pb.Queue(q, args...)
			}
		}
		sp += len(groups)

		var failed []failure // conflicts of this round, in order
		rollback := -1       // the multi-op group we must roll back to, if any
		br := tx.SendBatch(ctx, pb)
	read:
		for g := start; g < len(groups); g++ {
			if len(groups[g]) > 1 {
				if _, err := br.Exec(); err != nil {
					_ = br.Close()
					return fmt.Errorf("savepoint: %w", err)
				}
			}
			for j, op := range groups[g] {
				tag, err := br.Exec()
				if err != nil {
					_ = br.Close()
					return fmt.Errorf("group %d op %d (%T): %w", g, j, op, err)
				}
				if cerr := op.check(tag.RowsAffected()); cerr != nil {
					results[g] = cerr
					failed = append(failed, failure{g, j})
					if len(groups[g]) > 1 {
						rollback = g
						break read
					}
				}
			}
		}
		// After a conflict the statements sent behind it still ran; one of them may have
		// failed (an event of a run whose insert conflicted violates its foreign key) and
		// aborted the transaction. The rollback to the conflicting group's savepoint undoes
		// all of them, and recovers the transaction.
		if err := br.Close(); err != nil && rollback < 0 {
			return fmt.Errorf("pipeline: %w", err)
		}
		next := len(groups)
		if rollback >= 0 {
			// Undo the failed group's partial writes and everything sent after it.
			if _, err := tx.Exec(ctx, fmt.Sprintf("ROLLBACK TO SAVEPOINT g%d", base+rollback)); err != nil {
				return fmt.Errorf("rollback group %d: %w", rollback, err)
			}
			next = rollback + 1
		}
		// Diagnose after any rollback, so that stale results recorded here are kept.
		for _, f := range failed {
			if err := diagnose(ctx, tx, groups[f.group], f.op, &results[f.group]); err != nil {
				return fmt.Errorf("group %d: %w", f.group, err)
			}
		}
		start = next
	}
	return nil
}

type failure struct{ group, op int }

// diagnose refines a failed group's result: a stale worker result becomes ErrStaleAttempt
// (and is recorded), and a conflict learns what the failing op actually found.
func diagnose(ctx context.Context, tx querier, group []Op, failedOp int, result *error) error {
	for _, op := range group {
		if sc, ok := op.(staleChecker); ok {
			stale, err := sc.checkStale(ctx, tx)
			if err != nil {
				return err
			}
			if stale != nil {
				*result = stale
				return nil
			}
		}
	}
	var ce *ConflictError
	ar, ok := group[failedOp].(actualReader)
	if !ok || !errors.As(*result, &ce) {
		return nil
	}
	actual, err := ar.readActual(ctx, tx)
	if err != nil {
		return fmt.Errorf("read conflicting row: %w", err)
	}
	ce.Actual = actual
	return nil
}
