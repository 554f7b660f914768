package model

import (
	"fmt"
	"slices"
	"strings"
)

// InvalidTransitionError reports a state change the transition table forbids.
type InvalidTransitionError struct {
	Kind string // "run", "task" or "attempt"
	From string
	To   string
}

func (e *InvalidTransitionError) Error() string {
	return fmt.Sprintf("invalid %s transition %s → %s", e.Kind, e.From, e.To)
}

// table is a transition table: from → the states that may follow it.
type table[S ~string] map[S][]S

func (t table[S]) allows(from, to S) bool { return slices.Contains(t[from], to) }

func check[S ~string](kind string, t table[S], valid func(S) bool, from, to S) error {
	if !valid(from) || !valid(to) || !t.allows(from, to) {
		return &InvalidTransitionError{Kind: kind, From: string(from), To: string(to)}
	}
	return nil
}

func parse[S ~string](kind string, all []S, s string) (S, error) {
	for _, v := range all {
		if string(v) == s {
			return v, nil
		}
	}
	names := make([]string, len(all))
	for i, v := range all {
		names[i] = string(v)
	}
	return "", fmt.Errorf("unknown %s %q (want one of %s)", kind, s, strings.Join(names, ", "))
}

// ---------------------------------------------------------------------------------------
// Runs

// RunState is the state of a run. The values are stored as-is in runs.state.
type RunState string

const (
	// RunPending: the run and all its task rows exist; the leader has not started planning it.
	RunPending RunState = "PENDING"
	// RunRunning: at least one task may still make progress.
	RunRunning RunState = "RUNNING"
	// RunSucceeded: every task ended SUCCEEDED or SKIPPED. Final: nothing leaves it.
	RunSucceeded RunState = "SUCCEEDED"
	// RunFailed: every task is terminal and at least one FAILED, DEAD_LETTERED or
	// UPSTREAM_FAILED (or the run could not start). A run retry or a DLQ replay takes it back
	// to RUNNING.
	RunFailed RunState = "FAILED"
	// RunCancelled: an operator cancelled it; its unfinished tasks are CANCELLED. A run retry
	// takes it back to RUNNING.
	RunCancelled RunState = "CANCELLED"
)

// RunStates lists every run state in life-cycle order.
var RunStates = []RunState{RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled}

var runTransitions = table[RunState]{
	RunPending: {RunRunning, RunFailed, RunCancelled},
	RunRunning: {RunSucceeded, RunFailed, RunCancelled},
	RunFailed:  {RunRunning}, // run retry, DLQ replay
	// A cancelled run may be retried like a failed one: its cancelled tasks are re-run.
	RunCancelled: {RunRunning},
	RunSucceeded: nil,
}

// Valid reports whether s is a known run state.
func (s RunState) Valid() bool { return slices.Contains(RunStates, s) }

// Terminal reports whether the run makes no progress without an operator action.
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

func (s RunState) String() string { return string(s) }

// CanTransition reports whether the table allows s → to.
func (s RunState) CanTransition(to RunState) bool { return CheckRunTransition(s, to) == nil }

// CheckRunTransition returns a *InvalidTransitionError unless the table allows from → to.
func CheckRunTransition(from, to RunState) error {
	return check("run", runTransitions, RunState.Valid, from, to)
}

// ParseRunState parses a stored run state ("RUNNING").
func ParseRunState(s string) (RunState, error) { return parse("run state", RunStates, s) }

// ---------------------------------------------------------------------------------------
// Tasks

// TaskState is the state of one task within a run. The values are stored as-is in
// task_runs.state.
type TaskState string

const (
	// TaskPending: waiting for its upstream tasks; the planner evaluates its trigger rule
	// whenever an upstream task becomes terminal.
	TaskPending TaskState = "PENDING"
	// TaskQueued: ready to run, waiting for a worker with a free slot of its pool. It is in
	// the leader's in-memory per-worker queues (an earmark, not durable state).
	TaskQueued TaskState = "QUEUED"
	// TaskAssigned: attempt n was created with a fencing token and sent to a worker, which
	// has not yet reported it started.
	TaskAssigned TaskState = "ASSIGNED"
	// TaskRunning: the worker reported the attempt started.
	TaskRunning TaskState = "RUNNING"
	// TaskRetryWait: an attempt failed and retries are left; task_runs.next_attempt_at says
	// when it is queued again (the timer survives failover because the time is stored).
	TaskRetryWait TaskState = "RETRY_WAIT"
	// TaskSucceeded: an attempt succeeded. Left only when a run retry or a DLQ replay re-runs a task
	// upstream of it (see the table below).
	TaskSucceeded TaskState = "SUCCEEDED"
	// TaskFailed: failed without being dead-lettered, e.g. it could not be dispatched at all
	// (its command does not render against the run's params) or the failure is permanent.
	TaskFailed TaskState = "FAILED"
	// TaskUpstreamFailed: its trigger rule can no longer be met because upstream tasks failed.
	TaskUpstreamFailed TaskState = "UPSTREAM_FAILED"
	// TaskSkipped: its trigger rule decided it must not run (e.g. one_failed and all succeeded).
	TaskSkipped TaskState = "SKIPPED"
	// TaskCancelled: the run was cancelled before the task finished.
	TaskCancelled TaskState = "CANCELLED"
	// TaskDeadLettered: its attempts are exhausted; a dead_letters row holds every attempt's
	// error until an operator replays it.
	TaskDeadLettered TaskState = "DEAD_LETTERED"
)

// TaskStates lists every task state in life-cycle order.
var TaskStates = []TaskState{
	TaskPending, TaskQueued, TaskAssigned, TaskRunning, TaskRetryWait,
	TaskSucceeded, TaskFailed, TaskUpstreamFailed, TaskSkipped, TaskCancelled, TaskDeadLettered,
}

// Why each edge exists:
//
//   - PENDING → QUEUED: the trigger rule is met. PENDING → SKIPPED/UPSTREAM_FAILED: it will
//     never be met. PENDING → CANCELLED: run cancelled.
//   - QUEUED → ASSIGNED: a worker had a free slot. QUEUED → FAILED: the task cannot be
//     dispatched (render error). QUEUED → CANCELLED. There is no QUEUED → PENDING: a queued
//     task's upstream is terminal and only terminal runs are retried, so nothing un-queues it.
//   - ASSIGNED → RUNNING: the worker started it. ASSIGNED → QUEUED: the worker died (or
//     handed it back while draining) before starting it; the attempt is LOST, not failed.
//     ASSIGNED → SUCCEEDED/FAILED/RETRY_WAIT/DEAD_LETTERED: a result arrived while the
//     "started" message was lost (e.g. recorded by a leader that died before committing it).
//   - RUNNING → SUCCEEDED/FAILED/RETRY_WAIT/DEAD_LETTERED: the attempt's outcome. RUNNING →
//     QUEUED: its worker was lost; re-queued at once without backoff.
//   - RETRY_WAIT → QUEUED: next_attempt_at reached. RETRY_WAIT → CANCELLED.
//   - FAILED/DEAD_LETTERED/UPSTREAM_FAILED/CANCELLED → PENDING: run retry re-plans it.
//     → QUEUED: DLQ replay (or a retry of a task whose upstream is complete) queues it
//     directly. SKIPPED → PENDING: a run retry re-evaluates the trigger rule.
//   - SUCCEEDED → PENDING: only downstream of a task that a run retry or a DLQ replay re-runs
//     (Airflow's "clear" semantics: what ran after a re-run task runs again after it). A
//     succeeded task with nothing re-run upstream of it is kept.
var taskTransitions = table[TaskState]{
	TaskPending:        {TaskQueued, TaskSkipped, TaskUpstreamFailed, TaskCancelled},
	TaskQueued:         {TaskAssigned, TaskFailed, TaskCancelled},
	TaskAssigned:       {TaskRunning, TaskQueued, TaskSucceeded, TaskFailed, TaskRetryWait, TaskDeadLettered, TaskCancelled},
	TaskRunning:        {TaskSucceeded, TaskFailed, TaskRetryWait, TaskDeadLettered, TaskCancelled, TaskQueued},
	TaskRetryWait:      {TaskQueued, TaskCancelled},
	TaskSucceeded:      {TaskPending},
	TaskFailed:         {TaskPending, TaskQueued},
	TaskUpstreamFailed: {TaskPending, TaskQueued},
	TaskSkipped:        {TaskPending},
	TaskCancelled:      {TaskPending, TaskQueued},
	TaskDeadLettered:   {TaskPending, TaskQueued},
}

// Valid reports whether s is a known task state.
func (s TaskState) Valid() bool { return slices.Contains(TaskStates, s) }

// Terminal reports whether the task makes no progress without an operator action.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskSucceeded, TaskFailed, TaskUpstreamFailed, TaskSkipped, TaskCancelled, TaskDeadLettered:
		return true
	}
	return false
}

// Active reports whether an attempt of the task may be executing (ASSIGNED or RUNNING).
func (s TaskState) Active() bool { return s == TaskAssigned || s == TaskRunning }

func (s TaskState) String() string { return string(s) }

// CanTransition reports whether the table allows s → to.
func (s TaskState) CanTransition(to TaskState) bool { return CheckTaskTransition(s, to) == nil }

// CheckTaskTransition returns a *InvalidTransitionError unless the table allows from → to.
func CheckTaskTransition(from, to TaskState) error {
	return check("task", taskTransitions, TaskState.Valid, from, to)
}

// ParseTaskState parses a stored task state ("RETRY_WAIT").
func ParseTaskState(s string) (TaskState, error) { return parse("task state", TaskStates, s) }

// ---------------------------------------------------------------------------------------
// Attempts

// AttemptState is the state of one attempt. The values are stored as-is in attempts.state.
type AttemptState string

const (
	// AttemptAssigned: created with its fencing token and sent to a worker.
	AttemptAssigned AttemptState = "ASSIGNED"
	// AttemptRunning: the worker reported it started; deadline_at is set.
	AttemptRunning AttemptState = "RUNNING"
	// AttemptSucceeded: the worker reported success.
	AttemptSucceeded AttemptState = "SUCCEEDED"
	// AttemptFailed: the worker reported a failure (failure_kind says which).
	AttemptFailed AttemptState = "FAILED"
	// AttemptTimedOut: the leader enforced the deadline (started + timeout + grace).
	AttemptTimedOut AttemptState = "TIMED_OUT"
	// AttemptLost: its worker's lease expired (or it handed the attempt back) before a result.
	AttemptLost AttemptState = "LOST"
	// AttemptCancelled: cancelled with its run.
	AttemptCancelled AttemptState = "CANCELLED"
	// AttemptStale: a result arrived for it after the task had moved on without finishing it.
	// (A stale result for an already finished attempt keeps that state and is recorded in
	// stale_result_at / stale_outcome.)
	AttemptStale AttemptState = "STALE"
)

// AttemptStates lists every attempt state.
var AttemptStates = []AttemptState{
	AttemptAssigned, AttemptRunning, AttemptSucceeded, AttemptFailed,
	AttemptTimedOut, AttemptLost, AttemptCancelled, AttemptStale,
}

var attemptOutcomes = []AttemptState{
	AttemptSucceeded, AttemptFailed, AttemptTimedOut, AttemptLost, AttemptCancelled, AttemptStale,
}

var attemptTransitions = table[AttemptState]{
	AttemptAssigned: append([]AttemptState{AttemptRunning}, attemptOutcomes...),
	AttemptRunning:  attemptOutcomes,
}

// Valid reports whether s is a known attempt state.
func (s AttemptState) Valid() bool { return slices.Contains(AttemptStates, s) }

// Terminal reports whether the attempt has ended. Attempts never restart: a retry is a new
// attempt.
func (s AttemptState) Terminal() bool { return s.Valid() && !s.Active() }

// Active reports whether the attempt may be executing on a worker.
func (s AttemptState) Active() bool { return s == AttemptAssigned || s == AttemptRunning }

func (s AttemptState) String() string { return string(s) }

// CanTransition reports whether the table allows s → to.
func (s AttemptState) CanTransition(to AttemptState) bool {
	return CheckAttemptTransition(s, to) == nil
}

// CheckAttemptTransition returns a *InvalidTransitionError unless the table allows from → to.
func CheckAttemptTransition(from, to AttemptState) error {
	return check("attempt", attemptTransitions, AttemptState.Valid, from, to)
}

// ParseAttemptState parses a stored attempt state ("TIMED_OUT").
func ParseAttemptState(s string) (AttemptState, error) {
	return parse("attempt state", AttemptStates, s)
}
