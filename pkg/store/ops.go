package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
)

// conflictIf returns nil when rows == want, else a *ConflictError naming the op and what it
// expected. describe is called only then: the messages cost allocations, and a batch checks
// every op.
func conflictIf(rows, want int64, describe func() (op, expected string)) error {
	if rows == want {
		return nil
	}
	op, expected := describe()
	return &ConflictError{Op: op, Expected: expected}
}

// ---------------------------------------------------------------------------------------

// TaskTransition moves a task run From → To, compare-and-set on (state, attempt[, token]).
type TaskTransition struct {
	RunID   uuid.UUID
	TaskID  string
	From    model.TaskState // expected current state
	Attempt int             // expected current attempt number
	Token   int64           // expected current fencing token; 0: not compared
	To      model.TaskState
	// ResetBase sets attempt_base to the (expected) attempt number: a run retry or DLQ replay
	// re-opens the task with a fresh retry budget.
	ResetBase bool
	// Assign is required iff To is ASSIGNED: the task run's attempt becomes Attempt+1 with
	// this token and worker. Insert the attempt row (InsertAttempt) in the same group.
	Assign *Assignment
	// NextAttemptAt is required iff To is RETRY_WAIT.
	NextAttemptAt time.Time
	// Error, when non-empty, is stored as the task run's last_error.
	Error string
	// StartedAt, for a move to RUNNING, is when the attempt started as the leader saw it
	// (capped at the transaction's time); zero means the transaction's time.
	StartedAt time.Time
}

// Assignment is the new attempt of a TaskTransition to ASSIGNED.
type Assignment struct {
	Token    int64
	WorkerID string
}

func (o TaskTransition) name() string { return fmt.Sprintf("task run %s/%s", o.RunID, o.TaskID) }

func (o TaskTransition) validate() error {
	if o.RunID == uuid.Nil || o.TaskID == "" {
		return invalidf("task transition: run id and task id are required")
	}
	if err := model.CheckTaskTransition(o.From, o.To); err != nil {
		return fmt.Errorf("%s: %w", o.name(), errors.Join(ErrInvalidArgument, err))
	}
	if (o.To == model.TaskAssigned) != (o.Assign != nil) {
		return invalidf("%s: Assign must be set exactly when moving to ASSIGNED", o.name())
	}
	if o.Assign != nil && o.ResetBase {
		return invalidf("%s: an assignment cannot also reset the attempt base", o.name())
	}
	if o.Assign != nil && (o.Assign.Token == 0 || o.Assign.WorkerID == "") {
		return invalidf("%s: assignment needs a non-zero token and a worker id", o.name())
	}
	if (o.To == model.TaskRetryWait) != !o.NextAttemptAt.IsZero() {
		return invalidf("%s: NextAttemptAt must be set exactly when moving to RETRY_WAIT", o.name())
	}
	if o.Attempt < 0 {
		return invalidf("%s: attempt %d is negative", o.name(), o.Attempt)
	}
	return nil
}

func (o TaskTransition) statement() (string, []any) {
	attempt := o.Attempt
	var token, worker any // nil keeps the stored value
	switch {
	case o.Assign != nil:
		attempt, token, worker = o.Attempt+1, o.Assign.Token, o.Assign.WorkerID
	case !o.To.Active():
		worker = ""
	}
	return `UPDATE task_runs SET
			state = $3::text,
			attempt = $4,
			fencing_token = COALESCE($5::bigint, fencing_token),
			worker_id = COALESCE($6::text, worker_id),
			next_attempt_at = $7,
			last_error = CASE WHEN $8::text = '' THEN last_error ELSE $8::text END,
			started_at = CASE $3::text WHEN 'RUNNING' THEN LEAST(COALESCE($14::timestamptz, now()), now())
				WHEN 'ASSIGNED' THEN NULL ELSE started_at END,
			finished_at = CASE WHEN $9::boolean THEN now() END,
			attempt_base = CASE WHEN $13::boolean THEN $11 ELSE attempt_base END,
			updated_at = now()
		WHERE run_id = $1 AND task_id = $2 AND state = $10::text AND attempt = $11
			AND ($12::bigint = 0 OR fencing_token = $12::bigint)`,
		[]any{pgUUID(o.RunID), o.TaskID, string(o.To), attempt, token, worker, nullTime(o.NextAttemptAt), o.Error,
			o.To.Terminal(), string(o.From), o.Attempt, o.Token, o.ResetBase, nullTime(o.StartedAt)}
}

func (o TaskTransition) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		exp := fmt.Sprintf("state %s, attempt %d", o.From, o.Attempt)
		if o.Token != 0 {
			exp += fmt.Sprintf(", token %d", o.Token)
		}
		return o.name(), exp
	})
}

func (o TaskTransition) readActual(ctx context.Context, tx querier) (string, error) {
	return readTaskActual(ctx, tx, o.RunID, o.TaskID)
}

func readTaskActual(ctx context.Context, tx querier, runID uuid.UUID, taskID string) (string, error) {
	var state string
	var attempt int
	var token int64
	err := tx.QueryRow(ctx, `SELECT state, attempt, fencing_token FROM task_runs WHERE run_id = $1 AND task_id = $2`,
		runID, taskID).Scan(&state, &attempt, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return "no such task run", nil
	}
	return fmt.Sprintf("state %s, attempt %d, token %d", state, attempt, token), err
}

// ---------------------------------------------------------------------------------------

// InsertAttempt inserts a new attempt in state ASSIGNED. It conflicts if the attempt's id,
// (run, task, number) or fencing token already exists.
type InsertAttempt struct {
	ID       uuid.UUID
	RunID    uuid.UUID
	TaskID   string
	Number   int
	Token    int64
	WorkerID string
}

func (o InsertAttempt) validate() error {
	if o.ID == uuid.Nil || o.RunID == uuid.Nil || o.TaskID == "" {
		return invalidf("insert attempt: id, run id and task id are required")
	}
	if o.Number < 1 || o.Token == 0 || o.WorkerID == "" {
		return invalidf("insert attempt %s/%s: number ≥ 1, a non-zero token and a worker id are required", o.RunID, o.TaskID)
	}
	return nil
}

func (o InsertAttempt) statement() (string, []any) {
	return `INSERT INTO attempts (id, run_id, task_id, number, fencing_token, worker_id, state)
		VALUES ($1, $2, $3, $4, $5, $6, 'ASSIGNED') ON CONFLICT DO NOTHING`,
		[]any{pgUUID(o.ID), pgUUID(o.RunID), o.TaskID, o.Number, o.Token, o.WorkerID}
}

func (o InsertAttempt) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return fmt.Sprintf("attempt %d of %s/%s", o.Number, o.RunID, o.TaskID),
			fmt.Sprintf("no attempt with this number, id %s or token %d", o.ID, o.Token)
	})
}

// ---------------------------------------------------------------------------------------

// StartAttempt moves the attempt with Token from ASSIGNED to RUNNING and sets its deadline.
// Pair it with a TaskTransition ASSIGNED → RUNNING in one group.
type StartAttempt struct {
	Token      int64
	DeadlineAt time.Time // zero: no deadline
	// StartedAt is when the attempt started as the leader saw it, kept within
	// [assigned_at, the transaction's time]; zero means the transaction's time.
	StartedAt time.Time
}

func (o StartAttempt) validate() error {
	if o.Token == 0 {
		return invalidf("start attempt: token is required")
	}
	return nil
}

func (o StartAttempt) statement() (string, []any) {
	return `UPDATE attempts SET state = 'RUNNING',
			started_at = LEAST(GREATEST(COALESCE($3::timestamptz, now()), assigned_at), now()), deadline_at = $2
		WHERE fencing_token = $1 AND state = 'ASSIGNED'`, []any{o.Token, nullTime(o.DeadlineAt), nullTime(o.StartedAt)}
}

func (o StartAttempt) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return fmt.Sprintf("attempt with token %d", o.Token), "state ASSIGNED"
	})
}

func (o StartAttempt) readActual(ctx context.Context, tx querier) (string, error) {
	return readAttemptActual(ctx, tx, o.Token)
}

func readAttemptActual(ctx context.Context, tx querier, token int64) (string, error) {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM attempts WHERE fencing_token = $1`, token).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "no such attempt", nil
	}
	return "state " + state, err
}

// ---------------------------------------------------------------------------------------

// FinishAttempt ends the attempt with Token. It applies only while the attempt is ASSIGNED
// or RUNNING and its token is still the task run's current token.
//
// With Reported set (the outcome came from a worker), a failed group is diagnosed: if the
// token is not current or the attempt already ended, the result is recorded on the attempt
// row as stale (stale_result_at, stale_outcome; state STALE if it was still active), an
// attempt_stale event is appended, and the group reports a *StaleAttemptError
// (ErrStaleAttempt). Nothing else changes.
//
// With WorkerID set (the worker that reports the result), the attempt must be assigned to
// that worker: a result for another worker's attempt applies nothing and, when the group is
// diagnosed, records nothing either (ErrNotAssigned). Such an op is executed on its own, in
// order, never in a set statement.
type FinishAttempt struct {
	// RunID and TaskID name the attempt's task run. They are optional (the token identifies
	// the attempt) but let Apply execute the op together with others of its kind; without
	// them it is executed on its own, in order.
	RunID           uuid.UUID
	TaskID          string
	Token           int64
	To              model.AttemptState // SUCCEEDED, FAILED, TIMED_OUT, LOST or CANCELLED
	FailureKind     model.FailureKind
	ExitCode        *int
	HTTPStatus      *int
	Output          []byte // at most model.MaxAttemptOutput bytes are kept (the tail)
	OutputTruncated bool
	Error           string
	Reported        bool
	WorkerID        string
}

func (o FinishAttempt) validate() error {
	if o.Token == 0 {
		return invalidf("finish attempt: token is required")
	}
	if !o.To.Terminal() || o.To == model.AttemptStale {
		return invalidf("finish attempt %d: %q is not an outcome (want SUCCEEDED, FAILED, TIMED_OUT, LOST or CANCELLED)", o.Token, o.To)
	}
	if !o.FailureKind.Valid() {
		return invalidf("finish attempt %d: unknown failure kind %q", o.Token, o.FailureKind)
	}
	if (o.To == model.AttemptSucceeded) != (o.FailureKind == model.FailureNone) {
		return invalidf("finish attempt %d: failure kind %q does not fit outcome %s", o.Token, o.FailureKind, o.To)
	}
	if o.HTTPStatus != nil && (*o.HTTPStatus < 100 || *o.HTTPStatus > 599) {
		return invalidf("finish attempt %d: HTTP status %d out of range", o.Token, *o.HTTPStatus)
	}
	return nil
}

func (o FinishAttempt) output() ([]byte, bool) {
	if len(o.Output) > model.MaxAttemptOutput {
		return o.Output[len(o.Output)-model.MaxAttemptOutput:], true
	}
	if o.Output == nil {
		return []byte{}, o.OutputTruncated
	}
	return o.Output, o.OutputTruncated
}

func (o FinishAttempt) statement() (string, []any) {
	out, truncated := o.output()
	return `UPDATE attempts a SET state = $2, failure_kind = $3, exit_code = $4, http_status = $5,
			output = $6, output_truncated = $7, error = $8, finished_at = now()
		FROM task_runs t
		WHERE a.fencing_token = $1 AND a.state IN ('ASSIGNED', 'RUNNING')
			AND t.run_id = a.run_id AND t.task_id = a.task_id AND t.fencing_token = a.fencing_token
			AND ($9::text = '' OR a.worker_id = $9::text)`,
		[]any{o.Token, string(o.To), string(o.FailureKind), o.ExitCode, o.HTTPStatus, out, truncated, o.Error, o.WorkerID}
}

func (o FinishAttempt) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return fmt.Sprintf("attempt with token %d", o.Token),
			"state ASSIGNED or RUNNING and the task's current token"
	})
}

func (o FinishAttempt) readActual(ctx context.Context, tx querier) (string, error) {
	return readAttemptActual(ctx, tx, o.Token)
}

func (o FinishAttempt) outcome() string {
	s := string(o.To)
	if o.FailureKind != model.FailureNone {
		s += " (" + string(o.FailureKind) + ")"
	}
	if o.Error != "" {
		s += ": " + o.Error
	}
	return s
}

func (o FinishAttempt) checkStale(ctx context.Context, tx querier) (error, error) {
	if !o.Reported {
		return nil, nil
	}
	var state, worker string
	var current int64
	err := tx.QueryRow(ctx, `SELECT a.state, t.fencing_token, a.worker_id FROM attempts a
		JOIN task_runs t ON t.run_id = a.run_id AND t.task_id = a.task_id
		WHERE a.fencing_token = $1`, o.Token).Scan(&state, &current, &worker)
	if errors.Is(err, pgx.ErrNoRows) {
		return &StaleAttemptError{Token: o.Token}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check attempt %d for staleness: %w", o.Token, err)
	}
	if o.WorkerID != "" && worker != o.WorkerID {
		// Another worker's attempt: refused, and nothing is written on its row.
		return &NotAssignedError{Token: o.Token, Worker: o.WorkerID, Assigned: worker}, nil
	}
	if current == o.Token && model.AttemptState(state).Active() {
		return nil, nil // current: the group failed for another reason
	}
	msg := "stale result ignored: " + o.outcome()
	if _, err := tx.Exec(ctx, `
		WITH a AS (
			UPDATE attempts SET stale_result_at = now(), stale_outcome = $2,
				state = CASE WHEN state IN ('ASSIGNED', 'RUNNING') THEN 'STALE' ELSE state END,
				finished_at = COALESCE(finished_at, now())
			WHERE fencing_token = $1
			RETURNING run_id, task_id, number)
		INSERT INTO events (run_id, task_id, kind, attempt, message)
		SELECT run_id, task_id, 'attempt_stale', number, $3 FROM a`, o.Token, o.outcome(), msg); err != nil {
		return nil, fmt.Errorf("record stale result of attempt %d: %w", o.Token, err)
	}
	return &StaleAttemptError{Token: o.Token, Current: current, State: state}, nil
}

// ---------------------------------------------------------------------------------------

// RunTransition moves a run From → To, compare-and-set on its state. started_at is set the
// first time it becomes RUNNING; finished_at is set when To is terminal and cleared
// otherwise; error is replaced by Error (empty clears it, e.g. on retry).
type RunTransition struct {
	RunID uuid.UUID
	From  model.RunState
	To    model.RunState
	Error string
}

func (o RunTransition) validate() error {
	if o.RunID == uuid.Nil {
		return invalidf("run transition: run id is required")
	}
	if err := model.CheckRunTransition(o.From, o.To); err != nil {
		return fmt.Errorf("run %s: %w", o.RunID, errors.Join(ErrInvalidArgument, err))
	}
	return nil
}

func (o RunTransition) statement() (string, []any) {
	return `UPDATE runs SET state = $3::text, error = $4,
			started_at = CASE WHEN $3::text = 'RUNNING' THEN COALESCE(started_at, now()) ELSE started_at END,
			finished_at = CASE WHEN $5::boolean THEN now() END,
			updated_at = now()
		WHERE id = $1 AND state = $2::text`,
		[]any{pgUUID(o.RunID), string(o.From), string(o.To), o.Error, o.To.Terminal()}
}

func (o RunTransition) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "run " + o.RunID.String(), "state " + string(o.From)
	})
}

func (o RunTransition) readActual(ctx context.Context, tx querier) (string, error) {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM runs WHERE id = $1`, o.RunID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "no such run", nil
	}
	return "state " + state, err
}

// ---------------------------------------------------------------------------------------

// InsertRun creates a run in state PENDING with one PENDING task run per task id. It
// conflicts if the run id, or the run's (namespace, workflow, idempotency key), is taken;
// Store.CreateRun turns the latter into "return the existing run". The version must be one
// of the run's namespace (a foreign key).
type InsertRun struct {
	Run     model.Run // ID, Namespace, Workflow, Version, Params, IdempotencyKey, Trigger are used
	TaskIDs []string
}

func (o InsertRun) validate() error {
	r := o.Run
	switch {
	case r.ID == uuid.Nil:
		return invalidf("insert run: id is required")
	case !workflowName.MatchString(r.Namespace):
		return invalidf("insert run %s: namespace %q is invalid", r.ID, r.Namespace)
	case !workflowName.MatchString(r.Workflow):
		return invalidf("insert run %s: workflow name %q is invalid", r.ID, r.Workflow)
	case r.Version < 1:
		return invalidf("insert run %s: version %d must be ≥ 1", r.ID, r.Version)
	case !r.Trigger.Valid():
		return invalidf("insert run %s: unknown trigger %q (want one of %v)", r.ID, r.Trigger, model.Triggers)
	case len(o.TaskIDs) == 0:
		return invalidf("insert run %s: a run needs at least one task", r.ID)
	}
	seen := make(map[string]bool, len(o.TaskIDs))
	for _, id := range o.TaskIDs {
		if id == "" || seen[id] {
			return invalidf("insert run %s: task id %q is empty or repeated", r.ID, id)
		}
		seen[id] = true
	}
	return nil
}

func (o InsertRun) statement() (string, []any) {
	params := o.Run.Params
	if params == nil {
		params = map[string]string{}
	}
	return `WITH r AS (
			INSERT INTO runs (id, namespace, workflow, version, state, params, idempotency_key, trigger)
			VALUES ($1, $8, $2, $3, 'PENDING', $4, $5, $6)
			ON CONFLICT DO NOTHING
			RETURNING id)
		INSERT INTO task_runs (run_id, task_id, state)
		SELECT r.id, t.task_id, 'PENDING' FROM r, unnest($7::text[]) AS t (task_id)`,
		[]any{pgUUID(o.Run.ID), o.Run.Workflow, o.Run.Version, params, nullStr(o.Run.IdempotencyKey),
			string(o.Run.Trigger), o.TaskIDs, o.Run.Namespace}
}

func (o InsertRun) check(rows int64) error {
	return conflictIf(rows, int64(len(o.TaskIDs)), func() (string, string) {
		exp := "no run with id " + o.Run.ID.String()
		if o.Run.IdempotencyKey != "" {
			exp += fmt.Sprintf(" or idempotency key %q", o.Run.IdempotencyKey)
		}
		return "run of workflow " + o.Run.Namespace + "/" + o.Run.Workflow, exp
	})
}

// ---------------------------------------------------------------------------------------

var eventKind = regexp.MustCompile(`^[a-z][a-z_]{0,63}$`)

// AppendEvent appends an event to its run's history. Seq and (if zero) At are assigned by
// the store.
type AppendEvent struct {
	Event model.Event
}

func (o AppendEvent) validate() error {
	if o.Event.RunID == uuid.Nil {
		return invalidf("append event: run id is required")
	}
	if !eventKind.MatchString(string(o.Event.Kind)) {
		return invalidf("append event: kind %q must match %s", o.Event.Kind, eventKind)
	}
	if o.Event.Attempt < 0 {
		return invalidf("append event: attempt %d is negative", o.Event.Attempt)
	}
	return nil
}

func (o AppendEvent) statement() (string, []any) {
	e := o.Event
	return `INSERT INTO events (at, run_id, task_id, kind, from_state, to_state, attempt, message)
		VALUES (COALESCE($1, now()), $2, $3, $4, $5, $6, $7, $8)`,
		[]any{nullTime(e.At), pgUUID(e.RunID), e.TaskID, string(e.Kind), e.From, e.To, e.Attempt, e.Message}
}

func (o AppendEvent) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "event of run " + o.Event.RunID.String(), "an inserted row"
	})
}

// ---------------------------------------------------------------------------------------

// InsertDeadLetter records a dead-lettered task, in its run's namespace. It conflicts if the
// task run already has an open (not replayed) dead letter, the id is taken, or the run does
// not exist.
type InsertDeadLetter struct {
	DeadLetter model.DeadLetter // ID, RunID, TaskID, Workflow, Errors are used; the namespace is the run's
}

func (o InsertDeadLetter) validate() error {
	d := o.DeadLetter
	if d.ID == uuid.Nil || d.RunID == uuid.Nil || d.TaskID == "" || d.Workflow == "" {
		return invalidf("insert dead letter: id, run id, task id and workflow are required")
	}
	return nil
}

func (o InsertDeadLetter) statement() (string, []any) {
	d := o.DeadLetter
	errs := d.Errors
	if errs == nil {
		errs = []model.AttemptError{}
	}
	return `INSERT INTO dead_letters (id, namespace, run_id, task_id, workflow, errors)
		SELECT $1, r.namespace, $2, $3, $4, $5 FROM runs r WHERE r.id = $2
		ON CONFLICT DO NOTHING`, []any{pgUUID(d.ID), pgUUID(d.RunID), d.TaskID, d.Workflow, errs}
}

func (o InsertDeadLetter) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		d := o.DeadLetter
		return fmt.Sprintf("dead letter of %s/%s", d.RunID, d.TaskID),
			"no open dead letter for the task and no dead letter with id " + d.ID.String()
	})
}

// DeleteDeadLetter purges a dead letter of a namespace (the operator gives up on it): the row
// goes, the task stays DEAD_LETTERED. It conflicts if no such dead letter exists in that
// namespace.
type DeleteDeadLetter struct {
	Namespace string
	ID        uuid.UUID
}

func (o DeleteDeadLetter) validate() error {
	if o.ID == uuid.Nil || o.Namespace == "" {
		return invalidf("delete dead letter: namespace and id are required")
	}
	return nil
}

func (o DeleteDeadLetter) statement() (string, []any) {
	return `DELETE FROM dead_letters WHERE id = $1 AND namespace = $2`, []any{pgUUID(o.ID), o.Namespace}
}

func (o DeleteDeadLetter) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "dead letter " + o.ID.String(), "an existing dead letter"
	})
}

// MarkReplayed sets a dead letter's replayed_at, compare-and-set on it being unset: of
// concurrent replays exactly one group applies. Put it in the same group as the task's
// transition out of DEAD_LETTERED.
type MarkReplayed struct {
	ID uuid.UUID
}

func (o MarkReplayed) validate() error {
	if o.ID == uuid.Nil {
		return invalidf("mark replayed: id is required")
	}
	return nil
}

func (o MarkReplayed) statement() (string, []any) {
	return `UPDATE dead_letters SET replayed_at = now() WHERE id = $1 AND replayed_at IS NULL`, []any{pgUUID(o.ID)}
}

func (o MarkReplayed) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "dead letter " + o.ID.String(), "not replayed yet"
	})
}

func (o MarkReplayed) readActual(ctx context.Context, tx querier) (string, error) {
	var at *time.Time
	err := tx.QueryRow(ctx, `SELECT replayed_at FROM dead_letters WHERE id = $1`, o.ID).Scan(&at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "no such dead letter", nil
	case err != nil:
		return "", err
	case at == nil:
		return "not replayed", nil
	}
	return "replayed at " + at.UTC().Format(time.RFC3339Nano), nil
}

// ---------------------------------------------------------------------------------------

// PutSchedule creates or replaces a workflow's schedule (keeping its last fire time).
type PutSchedule struct {
	Schedule model.Schedule // Namespace, Workflow, Cron, Timezone (default UTC), NextFireAt
}

func (o PutSchedule) validate() error {
	s := o.Schedule
	if s.Namespace == "" || s.Workflow == "" || s.Cron == "" || s.NextFireAt.IsZero() {
		return invalidf("put schedule: namespace, workflow, cron and next fire time are required")
	}
	return nil
}

func (o PutSchedule) statement() (string, []any) {
	s := o.Schedule
	tz := s.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return `INSERT INTO schedules (namespace, workflow, cron, timezone, next_fire_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (namespace, workflow) DO UPDATE SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
			next_fire_at = EXCLUDED.next_fire_at, updated_at = now()`,
		[]any{s.Namespace, s.Workflow, s.Cron, tz, s.NextFireAt}
}

func (o PutSchedule) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "schedule of " + o.Schedule.Namespace + "/" + o.Schedule.Workflow, "an upserted row"
	})
}

// DeleteSchedule removes a workflow's schedule; deleting a missing schedule is a no-op.
type DeleteSchedule struct {
	Namespace string
	Workflow  string
}

func (o DeleteSchedule) validate() error {
	if o.Namespace == "" || o.Workflow == "" {
		return invalidf("delete schedule: namespace and workflow are required")
	}
	return nil
}

func (o DeleteSchedule) statement() (string, []any) {
	return `DELETE FROM schedules WHERE namespace = $1 AND workflow = $2`, []any{o.Namespace, o.Workflow}
}

func (DeleteSchedule) check(int64) error { return nil }

// AdvanceSchedule records that a schedule fired at FiredAt and moves its next fire time
// to Next, compare-and-set on the next fire time still being ExpectedNext: a fire time is
// consumed once.
type AdvanceSchedule struct {
	Namespace    string
	Workflow     string
	ExpectedNext time.Time
	Next         time.Time
	FiredAt      time.Time
}

func (o AdvanceSchedule) validate() error {
	if o.Namespace == "" || o.Workflow == "" || o.ExpectedNext.IsZero() || o.FiredAt.IsZero() {
		return invalidf("advance schedule: namespace, workflow, expected next and fired-at times are required")
	}
	if !o.Next.After(o.ExpectedNext) {
		return invalidf("advance schedule %s: next fire time %s is not after %s", o.Workflow,
			o.Next.Format(time.RFC3339), o.ExpectedNext.Format(time.RFC3339))
	}
	return nil
}

func (o AdvanceSchedule) statement() (string, []any) {
	return `UPDATE schedules SET next_fire_at = $3, last_fire_at = $4, updated_at = now()
		WHERE workflow = $1 AND next_fire_at = $2 AND namespace = $5`,
		[]any{o.Workflow, o.ExpectedNext, o.Next, o.FiredAt, o.Namespace}
}

func (o AdvanceSchedule) check(rows int64) error {
	return conflictIf(rows, 1, func() (string, string) {
		return "schedule of " + o.Namespace + "/" + o.Workflow,
			"next fire time " + o.ExpectedNext.UTC().Format(time.RFC3339Nano)
	})
}

func (o AdvanceSchedule) readActual(ctx context.Context, tx querier) (string, error) {
	var next time.Time
	err := tx.QueryRow(ctx, `SELECT next_fire_at FROM schedules WHERE namespace = $1 AND workflow = $2`,
		o.Namespace, o.Workflow).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return "no schedule", nil
	}
	return "next fire time " + next.UTC().Format(time.RFC3339Nano), err
}
