package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-io/cairn/pkg/model"
)

const runCols = `id, namespace, workflow, version, state, params, COALESCE(idempotency_key, ''), trigger, error,
	created_at, started_at, finished_at`

func scanRun(row pgx.Row) (model.Run, error) {
	var r model.Run
	err := row.Scan(runDest(&r)...)
	return r, err
}

// runDest returns the scan destinations of runCols into r, then extra (for columns a query
// selects after runCols).
func runDest(r *model.Run, extra ...any) []any {
	return append([]any{&r.ID, &r.Namespace, &r.Workflow, &r.Version, &r.State, &r.Params, &r.IdempotencyKey, &r.Trigger,
		&r.Error, &r.CreatedAt, optTime{&r.StartedAt}, optTime{&r.FinishedAt}}, extra...)
}

const taskCols = `run_id, task_id, state, attempt, fencing_token, worker_id, next_attempt_at, last_error,
	created_at, updated_at, started_at, finished_at, attempt_base`

// taskScanner reads task_runs rows (taskCols) into model.TaskRun values in place. A run may
// have 10,000 tasks and a new leader reads every active one, so it allocates per row only
// the strings it must (task id, worker, error): the run id and nullable times go through
// reused pgtype values instead of being boxed, and the state is one of model's constants.
type taskScanner struct {
	runID                   pgtype.UUID
	next, started, finished pgtype.Timestamptz
	dest                    []any
}

func newTaskScanner() *taskScanner {
	s := &taskScanner{}
	s.dest = []any{&s.runID, nil, nil, nil, nil, nil, &s.next, nil, nil, nil, &s.started, &s.finished, nil}
	return s
}

// scan reads the current row of rows into t.
func (s *taskScanner) scan(rows pgx.Rows, t *model.TaskRun) error {
	s.dest[1], s.dest[3], s.dest[4], s.dest[5] = &t.TaskID, &t.Attempt, &t.FencingToken, &t.WorkerID
	s.dest[7], s.dest[8], s.dest[9], s.dest[12] = &t.LastError, &t.CreatedAt, &t.UpdatedAt, &t.AttemptBase
	// dest[2] (state) stays nil: pgx skips it, and it is read from the raw value below.
	if err := rows.Scan(s.dest...); err != nil {
		return err
	}
	t.RunID = s.runID.Bytes
	t.NextAttemptAt, t.StartedAt, t.FinishedAt = optTS(s.next), optTS(s.started), optTS(s.finished)
	var err error
	if t.State, err = taskState(rows.RawValues()[2]); err != nil {
		return fmt.Errorf("task run %s/%s: %w", t.RunID, t.TaskID, err)
	}
	return nil
}

func optTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time
}

// taskState returns the model constant spelled raw (text arrives as its UTF-8 bytes in
// both formats) without allocating; the CHECK constraint admits nothing else, and anything
// else is an error naming the value (model.ParseTaskState's).
func taskState(raw []byte) (model.TaskState, error) {
	for _, s := range model.TaskStates {
		if string(s) == string(raw) {
			return s, nil
		}
	}
	return model.ParseTaskState(string(raw))
}

// appendTasks appends every row of rows (taskCols) to tasks.
func appendTasks(rows pgx.Rows, tasks []model.TaskRun) ([]model.TaskRun, error) {
	defer rows.Close()
	sc := newTaskScanner()
	for rows.Next() {
		tasks = append(tasks, model.TaskRun{})
		if err := sc.scan(rows, &tasks[len(tasks)-1]); err != nil {
			return nil, err
		}
	}
	return tasks, rows.Err()
}

const attemptCols = `id, run_id, task_id, number, fencing_token, worker_id, state, failure_kind, exit_code,
	http_status, output, output_truncated, error, assigned_at, started_at, deadline_at, finished_at,
	stale_result_at, stale_outcome`

func scanAttempt(row pgx.Row) (model.Attempt, error) {
	var a model.Attempt
	err := row.Scan(&a.ID, &a.RunID, &a.TaskID, &a.Number, &a.FencingToken, &a.WorkerID, &a.State,
		&a.FailureKind, &a.ExitCode, &a.HTTPStatus, &a.Output, &a.OutputTruncated, &a.Error, &a.AssignedAt,
		optTime{&a.StartedAt}, optTime{&a.DeadlineAt}, optTime{&a.FinishedAt}, optTime{&a.StaleResultAt},
		&a.StaleOutcome)
	return a, err
}

func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// RunDetail is a run with every task run, read from one snapshot.
type RunDetail struct {
	Run   model.Run
	Tasks []model.TaskRun // ordered by task id
}

// CreateRun creates run (state PENDING) in run.Namespace with one PENDING task run per id in
// taskIDs, in one transaction under the leader epoch. If run.IdempotencyKey is set and a run
// of the same namespace and workflow already has it, that run is returned with created =
// false; this holds under concurrent calls (ON CONFLICT on the unique key).
func (s *Store) CreateRun(ctx context.Context, epoch int64, run model.Run, taskIDs []string) (r model.Run, created bool, err error) {
	var b Batch
	b.Add(InsertRun{Run: run, TaskIDs: taskIDs})
	res, err := s.Apply(ctx, epoch, &b)
	if err != nil {
		return r, false, fmt.Errorf("create run of %s/%s: %w", run.Namespace, run.Workflow, err)
	}
	if res[0] != nil && (run.IdempotencyKey == "" || !errors.Is(res[0], ErrConflict)) {
		return r, false, fmt.Errorf("create run of %s/%s: %w", run.Namespace, run.Workflow, res[0])
	}
	if res[0] == nil {
		r, err = s.GetRunRow(ctx, run.Namespace, run.ID)
		if err != nil {
			return r, false, fmt.Errorf("create run of %s/%s: read back: %w", run.Namespace, run.Workflow, err)
		}
		return r, true, nil
	}
	r, err = s.RunByKey(ctx, run.Namespace, run.Workflow, run.IdempotencyKey)
	if errors.Is(err, ErrNotFound) { // the conflict was on the run id, not the key
		return r, false, fmt.Errorf("create run of %s/%s: %w", run.Namespace, run.Workflow, res[0])
	}
	if err != nil {
		return r, false, fmt.Errorf("create run of %s/%s: read existing: %w", run.Namespace, run.Workflow, err)
	}
	return r, false, nil
}

// GetRunRow returns a run of namespace ns without its task runs.
func (s *Store) GetRunRow(ctx context.Context, ns string, id uuid.UUID) (model.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1 AND namespace = $2`, pgUUID(id), ns))
	if err != nil {
		return r, fmt.Errorf("get run %s: %w", id, notFound(err))
	}
	return r, nil
}

// RunByKey returns the run of workflow in namespace ns created with an idempotency key.
func (s *Store) RunByKey(ctx context.Context, ns, workflow, key string) (model.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM runs
		WHERE namespace = $1 AND workflow = $2 AND idempotency_key = $3`, ns, workflow, key))
	if err != nil {
		return r, fmt.Errorf("run of %s/%s with idempotency key %q: %w", ns, workflow, key, notFound(err))
	}
	return r, nil
}

// GetRun returns a run of namespace ns with all its task runs. A run of another namespace is
// ErrNotFound.
func (s *Store) GetRun(ctx context.Context, ns string, id uuid.UUID) (RunDetail, error) {
	var d RunDetail
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var n int
		row := tx.QueryRow(ctx, `SELECT `+runCols+`, (SELECT count(*) FROM task_runs WHERE run_id = $1)
			FROM runs WHERE id = $1 AND namespace = $2`, pgUUID(id), ns)
		if err := row.Scan(runDest(&d.Run, &n)...); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT `+taskCols+` FROM task_runs WHERE run_id = $1 ORDER BY task_id`, pgUUID(id))
		if err != nil {
			return err
		}
		d.Tasks, err = appendTasks(rows, make([]model.TaskRun, 0, n))
		return err
	})
	if err != nil {
		return RunDetail{}, fmt.Errorf("get run %s: %w", id, err)
	}
	return d, nil
}

// NewRunDetail is the detail of a run CreateRun has just created (created = true) with
// these task ids, made without reading it back: every task PENDING since the run's
// creation, ordered by task id as GetRun orders them. An API answering a run's start can
// use it instead of GetRun, which would read thousands of rows the caller already knows.
func NewRunDetail(run model.Run, taskIDs []string) RunDetail {
	ids := slices.Clone(taskIDs)
	slices.Sort(ids)
	d := RunDetail{Run: run, Tasks: make([]model.TaskRun, len(ids))}
	for i, id := range ids {
		d.Tasks[i] = model.TaskRun{RunID: run.ID, TaskID: id, State: model.TaskPending,
			CreatedAt: run.CreatedAt, UpdatedAt: run.CreatedAt}
	}
	return d
}

// RunFilter narrows ListRuns. Zero fields do not filter.
type RunFilter struct {
	Workflow string
	State    model.RunState
}

// ListRuns lists the runs of namespace ns newest first (keyset on (created_at, id)).
func (s *Store) ListRuns(ctx context.Context, ns string, f RunFilter, page PageRequest) (runs []model.Run, next string, err error) {
	if f.State != "" && !f.State.Valid() {
		return nil, "", fmt.Errorf("list runs: %w", invalidf("unknown run state %q (want one of %v)", f.State, model.RunStates))
	}
	query := fmt.Sprintf("runs|%q|%q|%q", ns, f.Workflow, f.State)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	sql, args := `SELECT `+runCols+` FROM runs WHERE namespace = $1`, []any{ns}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Workflow != "" {
		sql += ` AND workflow = ` + arg(f.Workflow)
	}
	if f.State != "" {
		sql += ` AND state = ` + arg(string(f.State))
	}
	if key != nil {
		id, err := uuid.Parse(key.ID)
		if err != nil {
			return nil, "", fmt.Errorf("list runs: %w: bad key", ErrInvalidPageToken)
		}
		sql += fmt.Sprintf(` AND (created_at, id) < (%s, %s)`, arg(time.UnixMicro(key.Micro)), arg(id))
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	if runs, err = collect(rows, scanRun); err != nil {
		return nil, "", fmt.Errorf("list runs: %w", err)
	}
	if len(runs) > limit {
		runs = runs[:limit]
		last := runs[limit-1]
		next = encodeToken(pageKey{Query: query, Micro: last.CreatedAt.UnixMicro(), ID: last.ID.String()})
	}
	return runs, next, nil
}

// LoadActive returns every non-terminal (PENDING or RUNNING) run with its task runs, from
// one snapshot, oldest first: what a new leader rebuilds its view from.
func (s *Store) LoadActive(ctx context.Context) ([]RunDetail, error) {
	var out []RunDetail
	err := s.LoadActiveFunc(ctx, func(d RunDetail) error {
		out = append(out, d)
		return nil
	})
	return out, err
}

// VersionRef names one workflow version.
type VersionRef struct {
	Namespace string
	Workflow  string
	Version   int
}

// ActiveVersions returns the workflow versions that non-terminal (PENDING or RUNNING) runs
// of every namespace use, so that a caller of LoadActiveFunc can resolve them before it
// starts.
func (s *Store) ActiveVersions(ctx context.Context) ([]VersionRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT namespace, workflow, version FROM runs
		WHERE state IN ('PENDING', 'RUNNING') ORDER BY namespace, workflow, version`)
	if err != nil {
		return nil, fmt.Errorf("active workflow versions: %w", err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[VersionRef])
	if err != nil {
		return nil, fmt.Errorf("active workflow versions: %w", err)
	}
	return refs, nil
}

// LoadActiveFunc calls fn with every non-terminal (PENDING or RUNNING) run of every namespace
// and its task runs (ordered by task id), from one snapshot, oldest run first, one run at a time: a
// caller that keeps only what it derives from each detail never holds every task row of
// every active run at once. An error from fn stops the read and is returned. fn runs inside
// the read transaction, which holds one of the pool's connections: it must not wait for
// another one (the pool may have a single connection).
func (s *Store) LoadActiveFunc(ctx context.Context, fn func(RunDetail) error) error {
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+runCols+`, (SELECT count(*) FROM task_runs t WHERE t.run_id = runs.id)
			FROM runs WHERE state IN ('PENDING', 'RUNNING') ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		type active struct {
			run   model.Run
			tasks int
		}
		runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (active, error) {
			var a active
			err := row.Scan(runDest(&a.run, &a.tasks)...)
			return a, err
		})
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return nil
		}
		// The task rows in the same order as the runs: one run's rows at a time.
		rows, err = tx.Query(ctx, `SELECT `+taskColsT+` FROM task_runs t JOIN runs r ON r.id = t.run_id
			WHERE r.state IN ('PENDING', 'RUNNING') ORDER BY r.created_at, r.id, t.task_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newTaskScanner()
		detail := func(i int) RunDetail {
			return RunDetail{Run: runs[i].run, Tasks: make([]model.TaskRun, 0, runs[i].tasks)}
		}
		i, d := 0, detail(0)
		var t model.TaskRun
		for rows.Next() {
			if err := sc.scan(rows, &t); err != nil {
				return err
			}
			for t.RunID != d.Run.ID {
				if i++; i == len(runs) {
					return fmt.Errorf("task run %s/%s of no active run", t.RunID, t.TaskID)
				}
				if err := fn(d); err != nil {
					return err
				}
				d = detail(i)
			}
			d.Tasks = append(d.Tasks, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for {
			if err := fn(d); err != nil {
				return err
			}
			if i++; i == len(runs) {
				return nil
			}
			d = detail(i)
		}
	})
	if err != nil {
		return fmt.Errorf("load active runs: %w", err)
	}
	return nil
}

const taskColsT = `t.run_id, t.task_id, t.state, t.attempt, t.fencing_token, t.worker_id, t.next_attempt_at,
	t.last_error, t.created_at, t.updated_at, t.started_at, t.finished_at, t.attempt_base`

// ListAttempts returns the attempts of one task run of a run of namespace ns in attempt
// order, or ErrNotFound if the task run does not exist (or its run is of another namespace).
func (s *Store) ListAttempts(ctx context.Context, ns string, runID uuid.UUID, taskID string) ([]model.Attempt, error) {
	var out []model.Attempt
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM task_runs t JOIN runs r ON r.id = t.run_id
			WHERE t.run_id = $1 AND t.task_id = $2 AND r.namespace = $3`, runID, taskID, ns).Scan(&one); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT `+attemptCols+` FROM attempts WHERE run_id = $1 AND task_id = $2
			ORDER BY number`, runID, taskID)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanAttempt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s/%s: %w", runID, taskID, err)
	}
	return out, nil
}

// GetAttempt returns the attempt with fencing token token, whatever its namespace (tokens are
// the leader's; the API reads attempts through ListAttempts).
func (s *Store) GetAttempt(ctx context.Context, token int64) (model.Attempt, error) {
	a, err := scanAttempt(s.pool.QueryRow(ctx, `SELECT `+attemptCols+` FROM attempts WHERE fencing_token = $1`, token))
	if err != nil {
		return a, fmt.Errorf("get attempt with token %d: %w", token, notFound(err))
	}
	return a, nil
}

// EventsSince returns up to limit events of a run of namespace ns with seq > afterSeq, in seq
// order; none for a run of another namespace.
func (s *Store) EventsSince(ctx context.Context, ns string, runID uuid.UUID, afterSeq int64, limit int) ([]model.Event, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	rows, err := s.pool.Query(ctx, `SELECT e.seq, e.at, e.run_id, e.task_id, e.kind, e.from_state, e.to_state, e.attempt,
			e.message
		FROM events e WHERE e.run_id = $1 AND e.seq > $2
			AND EXISTS (SELECT 1 FROM runs r WHERE r.id = $1 AND r.namespace = $4)
		ORDER BY e.seq LIMIT $3`, runID, afterSeq, limit, ns)
	if err != nil {
		return nil, fmt.Errorf("events of run %s since %d: %w", runID, afterSeq, err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Event, error) {
		var e model.Event
		err := r.Scan(&e.Seq, &e.At, &e.RunID, &e.TaskID, &e.Kind, &e.From, &e.To, &e.Attempt, &e.Message)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of run %s since %d: %w", runID, afterSeq, err)
	}
	return evs, nil
}

// Purge deletes up to limit terminal runs of every namespace that finished before before, with their task
// runs, attempts, events and replayed dead letters. Runs with an open (not replayed) dead
// letter are kept: purging must not silently empty the DLQ. It returns how many runs it
// deleted.
func (s *Store) Purge(ctx context.Context, epoch int64, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("purge: %w", invalidf("limit %d must be positive", limit))
	}
	var n int64
	err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM runs WHERE id IN (
			SELECT r.id FROM runs r
			WHERE r.finished_at < $1 AND r.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
				AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.run_id = r.id AND d.replayed_at IS NULL)
			ORDER BY r.finished_at LIMIT $2)`, before, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge runs finished before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}
