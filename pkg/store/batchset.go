package store

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-io/cairn/pkg/model"
)

// Set-based execution of a batch (the savepoint-free attempt of Apply).
//
// The hot ops of a batch — task and run transitions, attempt inserts, starts and finishes — are
// executed as one statement per kind (`UPDATE … FROM unnest(…) WITH ORDINALITY … RETURNING
// ord`), not one statement per op: a batch of 100 task cycles costs a handful of statements
// instead of several hundred. The result must be exactly what applying the ops one by one,
// in order, would give. Two facts make that possible:
//
//   - Within one statement every row is read as it was before the statement; so an op kind
//     may not touch a row twice in one statement, and an op may not depend on an earlier
//     op of a kind whose statement is emitted after its own.
//   - The kinds are emitted in a fixed order (their rank): run inserts, task transitions,
//     attempt inserts, attempt starts, attempt finishes, run transitions, then the remaining
//     ops one by one in their original order (dead letters, schedules).
//
// The planner places each op, in order, in the earliest statement slot after every earlier
// op it conflicts with. Slots are (level, rank) in lexicographic order; each level holds one
// statement per set kind and the singles of each single rank in their original order. Each
// op declares the rows it reads and writes (accesses); two ops conflict when they share a row
// and one of them writes it. An op may be placed before an earlier op it does not conflict
// with: such ops commute. For a set kind, "after" is strict (one statement reads every row
// before writing any); a single may share the slot of a conflicting single of its rank, as
// singles run in order. Slots are executed in order, all in one pipeline. Ops the planner
// cannot describe (a FinishAttempt without its task run) are barriers: placed after
// everything before them, and everything after them is placed after them.
//
// The typical batch — results (start carried by the result: task ASSIGNED → RUNNING, start,
// finish, task RUNNING → SUCCEEDED) and assignments of other tasks — takes one level: one
// statement per kind, each row updated once (the pairs a result writes are fused, see
// fuse below).

// rank orders the statements of a level.
const (
	rankInsertRun     = iota // set: InsertRun, before everything that needs the run's rows
	rankTask                 // set: TaskTransition
	rankInsertAttempt        // set: InsertAttempt
	rankStart                // set: StartAttempt
	rankFinish               // set: FinishAttempt
	rankRun                  // set: RunTransition
	rankLate                 // singles, in order: dead letters, schedules
	numRanks
)

// rowKind names what a rowKey identifies.
type rowKind uint8

const (
	rowRunState    rowKind = iota + 1 // runs row (state)
	rowRunRows                        // the run's existence (its runs and task_runs rows)
	rowTask                           // task_runs row
	rowTaskToken                      // task_runs.fencing_token
	rowAttempt                        // attempts row, by token
	rowAttemptNo                      // attempts (run, task, number) uniqueness
	rowAttemptID                      // attempts id uniqueness
	rowIdempotency                    // runs (namespace, workflow, idempotency key) uniqueness
	rowOther                          // dead letters, schedules: kept in order among the singles
)

type rowKey struct {
	kind rowKind
	id   uuid.UUID
	name string
	n    int64
}

type access struct {
	key   rowKey
	write bool
}

// setRef points at one op of the batch: groups[g][j], or the fused op that replaced it.
type setRef struct {
	g, j int
	op   Op
}

// segment is one level of the plan: the refs of each rank, in order.
type segment struct {
	byRank [numRanks][]setRef
}

// slotUse holds the highest slot (+1; 0 = none) that read and that wrote a row.
type slotUse struct{ read, wrote int }

type setPlan struct {
	segments []*segment // by level
	events   eventRows
	uses     map[rowKey]slotUse
	floor    int // no op may be placed before this slot (after a barrier)
	top      int // highest slot used + 1
}

// describe returns an op's rank and accesses; ok is false for a barrier.
func describe(op Op) (rank int, acc []access, ok bool) {
	switch o := op.(type) {
	case InsertRun:
		acc := []access{
			{rowKey{kind: rowRunState, id: o.Run.ID}, true},
			{rowKey{kind: rowRunRows, id: o.Run.ID}, true},
		}
		if o.Run.IdempotencyKey != "" { // of two runs with one key, the first must win
			acc = append(acc, access{rowKey{kind: rowIdempotency,
				name: o.Run.Namespace + "\x00" + o.Run.Workflow + "\x00" + o.Run.IdempotencyKey}, true})
		}
		return rankInsertRun, acc, true
	case TaskTransition:
		acc := []access{
			{rowKey{kind: rowRunRows, id: o.RunID}, false},
			{rowKey{kind: rowTask, id: o.RunID, name: o.TaskID}, true},
		}
		if o.Assign != nil {
			acc = append(acc, access{rowKey{kind: rowTaskToken, id: o.RunID, name: o.TaskID}, true})
		}
		return rankTask, acc, true
	case InsertAttempt:
		return rankInsertAttempt, []access{
			{rowKey{kind: rowRunRows, id: o.RunID}, false},
			{rowKey{kind: rowAttempt, n: o.Token}, true},
			{rowKey{kind: rowAttemptNo, id: o.RunID, name: o.TaskID, n: int64(o.Number)}, true},
			{rowKey{kind: rowAttemptID, id: o.ID}, true},
		}, true
	case startedTask:
		return describe(o.TaskTransition)
	case startedFinish:
		return describe(o.FinishAttempt)
	case StartAttempt:
		return rankStart, []access{{rowKey{kind: rowAttempt, n: o.Token}, true}}, true
	case FinishAttempt:
		if o.RunID == uuid.Nil || o.TaskID == "" || o.WorkerID != "" {
			return 0, nil, false // the set statement does not check the worker
		}
		return rankFinish, []access{
			{rowKey{kind: rowAttempt, n: o.Token}, true},
			{rowKey{kind: rowTaskToken, id: o.RunID, name: o.TaskID}, false},
		}, true
	case RunTransition:
		return rankRun, []access{{rowKey{kind: rowRunState, id: o.RunID}, true}}, true
	case InsertDeadLetter:
		// A dead letter needs its task run to exist (foreign key): it reads the run's rows.
		return rankLate, []access{{rowKey{kind: rowOther}, true}, {rowKey{kind: rowRunRows, id: o.DeadLetter.RunID}, false}}, true
	case DeleteDeadLetter, MarkReplayed, PutSchedule, DeleteSchedule, AdvanceSchedule:
		// None of the set kinds reads what these write, and they read nothing the set kinds
		// write.
		return rankLate, []access{{rowKey{kind: rowOther}, true}}, true
	}
	return 0, nil, false
}

// planSet places the ops of groups in statement slots (see above).
func planSet(groups [][]Op) *setPlan {
	p := &setPlan{uses: make(map[rowKey]slotUse)}
	for g, ops := range groups {
		for _, ref := range fuse(g, ops) {
			op := ref.op
			if ev, ok := op.(AppendEvent); ok {
				p.events.add(ev.Event)
				continue
			}
			rank, acc, ok := describe(op)
			if !ok { // barrier
				slot := roundUp(max(p.top, p.floor), rankLate)
				p.put(slot, ref)
				p.floor = slot + 1
				continue
			}
			slot := roundUp(p.lowest(rank, acc), rank)
			for _, a := range acc {
				u := p.uses[a.key]
				if a.write {
					u.wrote = max(u.wrote, slot+1)
				} else {
					u.read = max(u.read, slot+1)
				}
				p.uses[a.key] = u
			}
			p.put(slot, ref)
		}
	}
	return p
}

// lowest returns the first slot an op of rank r with accesses acc may take: after every
// earlier op it conflicts with.
func (p *setPlan) lowest(r int, acc []access) int {
	lb := p.floor
	after := func(slot int) { // slot is a conflicting op's slot
		if !setKind(r) && slot%numRanks == r {
			lb = max(lb, slot) // singles of one slot run in order
		} else {
			lb = max(lb, slot+1)
		}
	}
	for _, a := range acc {
		u := p.uses[a.key]
		if u.wrote > 0 {
			after(u.wrote - 1)
		}
		if a.write && u.read > 0 {
			after(u.read - 1)
		}
	}
	return lb
}

// roundUp returns the first slot ≥ lb of rank r.
func roundUp(lb, r int) int {
	return lb + ((r-lb%numRanks)+numRanks)%numRanks
}

func (p *setPlan) put(slot int, ref setRef) {
	level := slot / numRanks
	for len(p.segments) <= level {
		p.segments = append(p.segments, &segment{})
	}
	seg := p.segments[level]
	seg.byRank[slot%numRanks] = append(seg.byRank[slot%numRanks], ref)
	p.top = max(p.top, slot+1)
}

// setKind reports whether ops of rank r are executed as one statement per level.
func setKind(r int) bool { return r >= rankInsertRun && r <= rankRun }

// stmt is one statement of a plan: the set statement of one kind's refs in a level, or one
// single op.
type stmt struct {
	rank int
	refs []setRef
}

// statements flattens the plan into its statements, in execution order.
func (p *setPlan) statements() []stmt {
	var out []stmt
	for _, seg := range p.segments {
		for r, refs := range seg.byRank {
			switch {
			case len(refs) == 0:
			case setKind(r):
				out = append(out, stmt{r, refs})
			default:
				for i := range refs {
					out = append(out, stmt{r, refs[i : i+1]})
				}
			}
		}
	}
	return out
}

// queue adds the statement to pb.
func (st stmt) queue(pb *pgx.Batch) {
	if !setKind(st.rank) {
		q, args := st.refs[0].op.statement()
		pb.Queue(q, args...)
		return
	}
	a := newRowSet(st.rank)
	for _, ref := range st.refs {
		a.addOp(ref.op)
	}
	q, args := a.statement()
	pb.Queue(q, args...)
}

// read reads the statement's result: the rows each of its refs affected.
func (st stmt) read(br pgx.BatchResults) ([]int64, error) {
	if setKind(st.rank) {
		return readApplied(br, st.rank, st.refs)
	}
	tag, err := br.Exec()
	return []int64{tag.RowsAffected()}, err
}

// rowSet collects the parameters of one set statement.
type rowSet interface {
	addOp(Op)
	statement() (string, []any)
}

func newRowSet(r int) rowSet {
	switch r {
	case rankInsertRun:
		return &runInserts{}
	case rankTask:
		return &taskRows{}
	case rankInsertAttempt:
		return &attemptRows{}
	case rankStart:
		return &startRows{}
	case rankFinish:
		return &finishRows{}
	case rankRun:
		return &runRows{}
	}
	panic(fmt.Sprintf("store: rank %d is not a set kind", r))
}

// readApplied reads a set statement's result and returns the rows each of its refs
// affected. For most kinds each result row is an op's ordinality (1-based position): 1 row;
// for InsertAttempt it is the token, found through tokens; for InsertRun it is the run id
// and its count of inserted task runs.
func readApplied(br pgx.BatchResults, r int, refs []setRef) ([]int64, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	n := len(refs)
	affected := make([]int64, n)
	mark := func(i int, count int64) error {
		if i < 0 || i >= n || affected[i] != 0 {
			return fmt.Errorf("set statement returned position %d of %d twice or out of range", i+1, n)
		}
		affected[i] = count
		return nil
	}
	switch r {
	case rankInsertRun:
		pos := make(map[uuid.UUID]int, n)
		for i, ref := range refs {
			pos[ref.op.(InsertRun).Run.ID] = i
		}
		var id uuid.UUID
		var count int64
		_, err = pgx.ForEachRow(rows, []any{&id, &count}, func() error {
			i, ok := pos[id]
			if !ok {
				return fmt.Errorf("set statement returned unknown run %s", id)
			}
			return mark(i, count)
		})
	case rankInsertAttempt:
		pos := make(map[int64]int, n)
		for i, ref := range refs {
			pos[ref.op.(InsertAttempt).Token] = i
		}
		var token int64
		_, err = pgx.ForEachRow(rows, []any{&token}, func() error {
			i, ok := pos[token]
			if !ok {
				return fmt.Errorf("set statement returned unknown token %d", token)
			}
			return mark(i, 1)
		})
	default:
		var ord int64
		_, err = pgx.ForEachRow(rows, []any{&ord}, func() error { return mark(int(ord)-1, 1) })
	}
	return affected, err
}

// taskRows are the parameters of one set TaskTransition statement (see
// TaskTransition.statement for the one-row version it must match).
type taskRows struct {
	runID      pgtype.FlatArray[pgtype.UUID]
	taskID     []string
	to         []string
	attempt    []int32
	token      pgtype.FlatArray[pgtype.Int8]
	worker     pgtype.FlatArray[pgtype.Text]
	nextAt     pgtype.FlatArray[pgtype.Timestamptz]
	errText    []string
	terminal   []bool
	from       []string
	expAttempt []int32
	expToken   []int64
	resetBase  []bool
	startedAt  pgtype.FlatArray[pgtype.Timestamptz]
	viaRunning []bool // a fused startedTask: started_at as for a move to RUNNING
}

func (a *taskRows) addOp(op Op) {
	switch o := op.(type) {
	case TaskTransition:
		a.add(o)
		a.viaRunning = append(a.viaRunning, false)
	case startedTask:
		a.add(o.TaskTransition)
		a.viaRunning = append(a.viaRunning, true)
	default:
		panic(fmt.Sprintf("store: %T is not a task transition", op))
	}
}

func (a *taskRows) add(o TaskTransition) {
	attempt := o.Attempt
	var token pgtype.Int8
	var worker pgtype.Text // NULL keeps the stored value
	switch {
	case o.Assign != nil:
		attempt = o.Attempt + 1
		token = pgtype.Int8{Int64: o.Assign.Token, Valid: true}
		worker = pgtype.Text{String: o.Assign.WorkerID, Valid: true}
	case !o.To.Active():
		worker = pgtype.Text{Valid: true}
	}
	a.runID = append(a.runID, pgUUID(o.RunID))
	a.taskID = append(a.taskID, o.TaskID)
	a.to = append(a.to, string(o.To))
	a.attempt = append(a.attempt, int32(attempt))
	a.token = append(a.token, token)
	a.worker = append(a.worker, worker)
	a.nextAt = append(a.nextAt, pgTime(o.NextAttemptAt))
	a.errText = append(a.errText, o.Error)
	a.terminal = append(a.terminal, o.To.Terminal())
	a.from = append(a.from, string(o.From))
	a.expAttempt = append(a.expAttempt, int32(o.Attempt))
	a.expToken = append(a.expToken, o.Token)
	a.resetBase = append(a.resetBase, o.ResetBase)
	a.startedAt = append(a.startedAt, pgTime(o.StartedAt))
}

func (a *taskRows) statement() (string, []any) {
	return `UPDATE task_runs t SET
			state = u.to_state,
			attempt = u.attempt,
			fencing_token = COALESCE(u.token, t.fencing_token),
			worker_id = COALESCE(u.worker, t.worker_id),
			next_attempt_at = u.next_at,
			last_error = CASE WHEN u.err = '' THEN t.last_error ELSE u.err END,
			started_at = CASE WHEN u.to_state = 'RUNNING' OR u.via_running THEN LEAST(COALESCE(u.started, now()), now())
				WHEN u.to_state = 'ASSIGNED' THEN NULL ELSE t.started_at END,
			finished_at = CASE WHEN u.terminal THEN now() END,
			attempt_base = CASE WHEN u.reset_base THEN u.exp_attempt ELSE t.attempt_base END,
			updated_at = now()
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[],
				$7::timestamptz[], $8::text[], $9::boolean[], $10::text[], $11::int[], $12::bigint[],
				$13::boolean[], $14::timestamptz[], $15::boolean[])
			WITH ORDINALITY AS u (run_id, task_id, to_state, attempt, token, worker, next_at, err,
				terminal, from_state, exp_attempt, exp_token, reset_base, started, via_running, ord)
		WHERE t.run_id = u.run_id AND t.task_id = u.task_id AND t.state = u.from_state
			AND t.attempt = u.exp_attempt AND (u.exp_token = 0 OR t.fencing_token = u.exp_token)
		RETURNING u.ord`,
		[]any{a.runID, a.taskID, a.to, a.attempt, a.token, a.worker, a.nextAt, a.errText, a.terminal,
			a.from, a.expAttempt, a.expToken, a.resetBase, a.startedAt, a.viaRunning}
}

// attemptRows are the parameters of one set InsertAttempt statement.
type attemptRows struct {
	id, runID pgtype.FlatArray[pgtype.UUID]
	taskID    []string
	number    []int32
	token     []int64
	worker    []string
}

func (a *attemptRows) addOp(op Op) { a.add(op.(InsertAttempt)) }

func (a *attemptRows) add(o InsertAttempt) {
	a.id = append(a.id, pgUUID(o.ID))
	a.runID = append(a.runID, pgUUID(o.RunID))
	a.taskID = append(a.taskID, o.TaskID)
	a.number = append(a.number, int32(o.Number))
	a.token = append(a.token, o.Token)
	a.worker = append(a.worker, o.WorkerID)
}

// statement returns the token of each inserted row (an INSERT's RETURNING cannot see the
// unnest's ordinality; tokens are unique within a segment).
func (a *attemptRows) statement() (string, []any) {
	return `INSERT INTO attempts (id, run_id, task_id, number, fencing_token, worker_id, state)
		SELECT u.id, u.run_id, u.task_id, u.number, u.token, u.worker, 'ASSIGNED'
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::bigint[], $6::text[])
			WITH ORDINALITY AS u (id, run_id, task_id, number, token, worker, ord)
		ORDER BY u.ord
		ON CONFLICT DO NOTHING
		RETURNING fencing_token`,
		[]any{a.id, a.runID, a.taskID, a.number, a.token, a.worker}
}

// startRows are the parameters of one set StartAttempt statement.
type startRows struct {
	token     []int64
	deadline  pgtype.FlatArray[pgtype.Timestamptz]
	startedAt pgtype.FlatArray[pgtype.Timestamptz]
}

func (a *startRows) addOp(op Op) { a.add(op.(StartAttempt)) }

func (a *startRows) add(o StartAttempt) {
	a.token = append(a.token, o.Token)
	a.deadline = append(a.deadline, pgTime(o.DeadlineAt))
	a.startedAt = append(a.startedAt, pgTime(o.StartedAt))
}

// statement finds each attempt through a LATERAL lookup driven by the unnest, like
// finishRows.statement: joined freely, the planner scans the assigned attempts and re-scans
// the unnest for each.
func (a *startRows) statement() (string, []any) {
	return `UPDATE attempts a SET state = 'RUNNING',
			started_at = LEAST(GREATEST(COALESCE(v.started, now()), a.assigned_at), now()),
			deadline_at = v.deadline
		FROM (SELECT u.*, x.id
			FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[])
				WITH ORDINALITY AS u (token, deadline, started, ord)
			CROSS JOIN LATERAL (
				SELECT c.id FROM attempts c WHERE c.fencing_token = u.token AND c.state = 'ASSIGNED'
				OFFSET 0) x) v
		WHERE a.id = v.id
		RETURNING v.ord`,
		[]any{a.token, a.deadline, a.startedAt}
}

// finishRows are the parameters of one set FinishAttempt statement.
type finishRows struct {
	token      []int64
	to         []string
	kind       []string
	exitCode   pgtype.FlatArray[pgtype.Int4]
	httpStatus pgtype.FlatArray[pgtype.Int4]
	output     [][]byte
	truncated  []bool
	errText    []string
	// a fused startedFinish: the attempt must be ASSIGNED and gets the start's fields
	start     []bool
	deadline  pgtype.FlatArray[pgtype.Timestamptz]
	startedAt pgtype.FlatArray[pgtype.Timestamptz]
}

func (a *finishRows) addOp(op Op) {
	switch o := op.(type) {
	case FinishAttempt:
		a.add(o)
		a.start = append(a.start, false)
		a.deadline = append(a.deadline, pgtype.Timestamptz{})
		a.startedAt = append(a.startedAt, pgtype.Timestamptz{})
	case startedFinish:
		a.add(o.FinishAttempt)
		a.start = append(a.start, true)
		a.deadline = append(a.deadline, pgTime(o.start.DeadlineAt))
		a.startedAt = append(a.startedAt, pgTime(o.start.StartedAt))
	default:
		panic(fmt.Sprintf("store: %T is not an attempt finish", op))
	}
}

func (a *finishRows) add(o FinishAttempt) {
	out, truncated := o.output()
	a.token = append(a.token, o.Token)
	a.to = append(a.to, string(o.To))
	a.kind = append(a.kind, string(o.FailureKind))
	a.exitCode = append(a.exitCode, pgInt4(o.ExitCode))
	a.httpStatus = append(a.httpStatus, pgInt4(o.HTTPStatus))
	a.output = append(a.output, out)
	a.truncated = append(a.truncated, truncated)
	a.errText = append(a.errText, o.Error)
}

// statement finds each attempt through a LATERAL lookup driven by the unnest (OFFSET 0 keeps
// the planner from flattening it), so the plan is always: per row, one index lookup of the
// attempt by token and of its task run by key. Joined freely, the planner scans the active
// attempts first and re-scans the unnest for each (quadratic in the batch).
func (a *finishRows) statement() (string, []any) {
	return `UPDATE attempts a SET state = v.to_state, failure_kind = v.kind, exit_code = v.exit_code,
			http_status = v.http_status, output = v.output, output_truncated = v.truncated,
			error = v.err, finished_at = now(),
			started_at = CASE WHEN v.start THEN LEAST(GREATEST(COALESCE(v.started, now()), a.assigned_at), now())
				ELSE a.started_at END,
			deadline_at = CASE WHEN v.start THEN v.deadline ELSE a.deadline_at END
		FROM (SELECT u.*, x.id
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bytea[],
					$7::boolean[], $8::text[], $9::boolean[], $10::timestamptz[], $11::timestamptz[])
				WITH ORDINALITY AS u (token, to_state, kind, exit_code, http_status, output, truncated, err,
					start, deadline, started, ord)
			CROSS JOIN LATERAL (
				SELECT c.id FROM attempts c JOIN task_runs t
					ON t.run_id = c.run_id AND t.task_id = c.task_id AND t.fencing_token = c.fencing_token
				WHERE c.fencing_token = u.token
					AND (c.state = 'ASSIGNED' OR (c.state = 'RUNNING' AND NOT u.start))
				OFFSET 0) x) v
		WHERE a.id = v.id
		RETURNING v.ord`,
		[]any{a.token, a.to, a.kind, a.exitCode, a.httpStatus, a.output, a.truncated, a.errText,
			a.start, a.deadline, a.startedAt}
}

// runInserts are the parameters of one set InsertRun statement: the runs, and their tasks
// flattened (run id per task).
type runInserts struct {
	id        pgtype.FlatArray[pgtype.UUID]
	namespace []string
	workflow  []string
	version   []int32
	params    []map[string]string
	key       pgtype.FlatArray[pgtype.Text]
	trigger   []string
	taskRun   pgtype.FlatArray[pgtype.UUID]
	taskID    []string
}

func (a *runInserts) addOp(op Op) { a.add(op.(InsertRun)) }

func (a *runInserts) add(o InsertRun) {
	params := o.Run.Params
	if params == nil {
		params = map[string]string{}
	}
	a.id = append(a.id, pgUUID(o.Run.ID))
	a.namespace = append(a.namespace, o.Run.Namespace)
	a.workflow = append(a.workflow, o.Run.Workflow)
	a.version = append(a.version, int32(o.Run.Version))
	a.params = append(a.params, params)
	a.key = append(a.key, pgtype.Text{String: o.Run.IdempotencyKey, Valid: o.Run.IdempotencyKey != ""})
	a.trigger = append(a.trigger, string(o.Run.Trigger))
	for _, t := range o.TaskIDs {
		a.taskRun = append(a.taskRun, pgUUID(o.Run.ID))
		a.taskID = append(a.taskID, t)
	}
}

// statement returns the id of each inserted run and the number of task runs inserted with
// it (InsertRun applies iff that is every task; a run not inserted returns nothing).
func (a *runInserts) statement() (string, []any) {
	return `WITH r AS (
			INSERT INTO runs (id, namespace, workflow, version, state, params, idempotency_key, trigger)
			SELECT u.id, u.namespace, u.workflow, u.version, 'PENDING', u.params, u.key, u.trigger
			FROM unnest($1::uuid[], $9::text[], $2::text[], $3::int[], $4::jsonb[], $5::text[], $6::text[])
				WITH ORDINALITY AS u (id, namespace, workflow, version, params, key, trigger, ord)
			ORDER BY u.ord
			ON CONFLICT DO NOTHING
			RETURNING id),
		t AS (
			INSERT INTO task_runs (run_id, task_id, state)
			SELECT x.run_id, x.task_id, 'PENDING' FROM unnest($7::uuid[], $8::text[]) AS x (run_id, task_id)
			WHERE x.run_id IN (SELECT id FROM r)
			RETURNING run_id)
		SELECT run_id, count(*) FROM t GROUP BY run_id`,
		[]any{a.id, a.workflow, a.version, a.params, a.key, a.trigger, a.taskRun, a.taskID, a.namespace}
}

// runRows are the parameters of one set RunTransition statement.
type runRows struct {
	id       pgtype.FlatArray[pgtype.UUID]
	from, to []string
	errText  []string
	terminal []bool
}

func (a *runRows) addOp(op Op) { a.add(op.(RunTransition)) }

func (a *runRows) add(o RunTransition) {
	a.id = append(a.id, pgUUID(o.RunID))
	a.from = append(a.from, string(o.From))
	a.to = append(a.to, string(o.To))
	a.errText = append(a.errText, o.Error)
	a.terminal = append(a.terminal, o.To.Terminal())
}

func (a *runRows) statement() (string, []any) {
	return `UPDATE runs r SET state = u.to_state, error = u.err,
			started_at = CASE WHEN u.to_state = 'RUNNING' THEN COALESCE(r.started_at, now()) ELSE r.started_at END,
			finished_at = CASE WHEN u.terminal THEN now() END,
			updated_at = now()
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[])
			WITH ORDINALITY AS u (id, from_state, to_state, err, terminal, ord)
		WHERE r.id = u.id AND r.state = u.from_state
		RETURNING u.ord`,
		[]any{a.id, a.from, a.to, a.errText, a.terminal}
}

func pgTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func pgInt4(p *int) pgtype.Int4 {
	if p == nil {
		return pgtype.Int4{}
	}
	return pgtype.Int4{Int32: int32(*p), Valid: true}
}

// Fusion. A worker's start usually reaches the leader in the same batch as its result, and
// the engine then writes, in one group: task ASSIGNED → RUNNING, attempt start, attempt
// finish, task RUNNING → outcome. Each pair on one row is fused into one row update (half the
// row versions and index work of a short task's cycle) when that is exactly the pair's
// effect:
//
//   - startedTask: a TaskTransition to RUNNING (no assignment, no attempt-base reset) and a
//     later one of the same task from RUNNING with the same attempt (and a compatible
//     expected token). The first applies iff the pair does (the second's expectation is the
//     first's result); the row gets the second's state and fields, and the first's started_at.
//   - startedFinish: a StartAttempt and a later FinishAttempt (naming its task run) of the same
//     token. The pair applies iff the attempt is ASSIGNED and its token is the task's
//     current one (a start changes neither the token nor the task).
//
// Only ops of one group are fused, and only when no op between them touches the same row, so
// a fused op stands at the second op's position. A fused op that fails fails its group (which
// has at least two ops), which sends the batch to the sequential path: fusion never decides
// an outcome on its own.

type startedTask struct {
	TaskTransition // the second transition, with the first's expectations and StartedAt
}

type startedFinish struct {
	FinishAttempt
	start StartAttempt
}

type taskKey struct {
	run  uuid.UUID
	task string
}

// fuse returns the ops of group g as refs, with fusable pairs replaced by one op.
func fuse(g int, ops []Op) []setRef {
	refs := make([]setRef, len(ops))
	for j, op := range ops {
		refs[j] = setRef{g: g, j: j, op: op}
	}
	if len(ops) < 2 {
		return refs
	}
	running := map[taskKey]int{} // task → index of a pending TaskTransition to RUNNING
	started := map[int64]int{}   // token → index of a pending StartAttempt
	drop := 0
	for j, op := range ops {
		switch o := op.(type) {
		case TaskTransition:
			k := taskKey{o.RunID, o.TaskID}
			if i, ok := running[k]; ok {
				delete(running, k)
				first := ops[i].(TaskTransition)
				if f, ok := fuseTask(first, o); ok {
					refs[i].op, refs[j].op = nil, f
					drop++
					continue
				}
			}
			if o.To == model.TaskRunning && o.Assign == nil && !o.ResetBase {
				running[k] = j
			}
		case StartAttempt:
			started[o.Token] = j
		case FinishAttempt:
			i, ok := started[o.Token]
			delete(started, o.Token)
			if ok && o.RunID != uuid.Nil && o.TaskID != "" && o.WorkerID == "" {
				refs[i].op, refs[j].op = nil, startedFinish{FinishAttempt: o, start: ops[i].(StartAttempt)}
				drop++
			}
		case InsertAttempt:
			delete(started, o.Token)
		}
	}
	if drop == 0 {
		return refs
	}
	out := refs[:0]
	for _, r := range refs {
		if r.op != nil {
			out = append(out, r)
		}
	}
	return out
}

// fuseTask fuses a transition to RUNNING with a later transition of the same task.
func fuseTask(first, second TaskTransition) (startedTask, bool) {
	if second.From != model.TaskRunning || second.Attempt != first.Attempt || second.Assign != nil || second.ResetBase {
		return startedTask{}, false
	}
	token := first.Token
	switch {
	case second.Token == 0:
	case token == 0:
		token = second.Token
	case token != second.Token:
		return startedTask{}, false // never both apply: leave it to the statements
	}
	f := second
	f.From, f.Token, f.StartedAt = first.From, token, first.StartedAt
	if f.Error == "" {
		f.Error = first.Error
	}
	return startedTask{f}, true
}
