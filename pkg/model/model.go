package model

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/google/uuid"
)

// MaxAttemptOutput is the most output bytes kept per attempt (the executors' default cap).
// The store truncates longer output and the schema rejects it.
const MaxAttemptOutput = 64 << 10

// DefaultNamespace is the namespace of requests that name none. It always exists.
const DefaultNamespace = "default"

// Namespace groups workflows and runs: every workflow (its versions, its schedule) and every
// run (its task runs, attempts, events, dead letters) belongs to exactly one, and is not
// found from another. Names follow the workflow-name rule. A namespace is deleted only when
// it holds nothing.
type Namespace struct {
	Name        string
	Description string
	CreatedAt   time.Time
}

// Secret is what is known about a stored secret without its value: its name in its
// namespace, the keyring key its sealed value is under, and when and by whom it was set. The
// value itself only ever exists sealed in PostgreSQL, and in clear on the leader answering a
// worker and on that worker for the attempt that uses it.
type Secret struct {
	Namespace string
	Name      string
	KeyID     string
	CreatedAt time.Time
	UpdatedAt time.Time
	UpdatedBy string // the token name of the last set
}

// Workflow is a named DAG. Its content lives in versions; the workflow row points at the
// version applied last. (Namespace, Name) identifies it.
type Workflow struct {
	Namespace     string
	Name          string
	Description   string
	LatestVersion int // the version applied last (re-applying old YAML makes it latest again)
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// WorkflowVersion is one immutable version of a workflow, identified by the SHA-256 of its
// YAML exactly as submitted: submitting identical bytes again yields the same version.
type WorkflowVersion struct {
	Namespace string
	Workflow  string
	Version   int    // 1, 2, ... per workflow, in order of first submission
	Hash      string // lowercase hex SHA-256 of YAML
	YAML      string
	// Compiled is the scheduler's compiled form of the DAG (JSON). The store treats it as
	// opaque bytes.
	Compiled  []byte
	CreatedAt time.Time
}

// HashYAML returns the content hash identifying a version: lowercase hex SHA-256.
func HashYAML(yaml string) string {
	sum := sha256.Sum256([]byte(yaml))
	return hex.EncodeToString(sum[:])
}

// Trigger says what started a run. Stored as-is in runs.trigger.
type Trigger string

const (
	TriggerManual   Trigger = "manual"   // an API call
	TriggerSchedule Trigger = "schedule" // the workflow's cron schedule
	TriggerRetry    Trigger = "retry"    // a new run retrying an earlier one
)

// Triggers lists every trigger.
var Triggers = []Trigger{TriggerManual, TriggerSchedule, TriggerRetry}

// Valid reports whether t is a known trigger.
func (t Trigger) Valid() bool { return slices.Contains(Triggers, t) }

func (t Trigger) String() string { return string(t) }

// ParseTrigger parses a stored trigger ("schedule").
func ParseTrigger(s string) (Trigger, error) { return parse("trigger", Triggers, s) }

// Run is one execution of a workflow version of its namespace.
type Run struct {
	ID        uuid.UUID
	Namespace string
	Workflow  string
	Version   int
	State     RunState
	Params    map[string]string // the effective parameters (defaults merged with overrides)
	// IdempotencyKey, when non-empty, is unique per (namespace, workflow): creating a run
	// with a key already used returns the existing run.
	IdempotencyKey string
	Trigger        Trigger
	CreatedAt      time.Time
	StartedAt      time.Time // zero until RUNNING
	FinishedAt     time.Time // zero until terminal
	Error          string    // why it failed, for people
}

// TaskRun is the state of one task within a run. (RunID, TaskID) identifies it.
type TaskRun struct {
	RunID  uuid.UUID
	TaskID string
	State  TaskState
	// Attempt is the number of the current (or last) attempt; 0 before the first.
	Attempt int
	// FencingToken identifies the current attempt; results carrying another token are stale.
	// 0 before the first attempt.
	FencingToken  int64
	WorkerID      string    // worker of the current attempt while ASSIGNED/RUNNING
	NextAttemptAt time.Time // set in RETRY_WAIT
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	StartedAt     time.Time // when the current attempt started running
	FinishedAt    time.Time // when it became terminal; zero otherwise
	// AttemptBase is the attempt number a run retry or DLQ replay re-opened the task at;
	// retries are counted from it (Attempt - AttemptBase attempts made since).
	AttemptBase int
}

// FailureKind says why an attempt failed. The first values match the executors'; the
// store keeps them as-is in attempts.failure_kind.
type FailureKind string

const (
	FailureNone             FailureKind = ""
	FailureTimeout          FailureKind = "timeout"
	FailureExitCode         FailureKind = "exit_code"
	FailureUnexpectedStatus FailureKind = "unexpected_status"
	FailureConnection       FailureKind = "connection"
	FailureCancelled        FailureKind = "cancelled"
	FailureInternal         FailureKind = "internal"
	// FailureLost: the worker vanished (lease expired) before reporting.
	FailureLost FailureKind = "lost"
)

// FailureKinds lists every failure kind, FailureNone first.
var FailureKinds = []FailureKind{
	FailureNone, FailureTimeout, FailureExitCode, FailureUnexpectedStatus,
	FailureConnection, FailureCancelled, FailureInternal, FailureLost,
}

// Valid reports whether k is a known failure kind (FailureNone included).
func (k FailureKind) Valid() bool { return slices.Contains(FailureKinds, k) }

func (k FailureKind) String() string { return string(k) }

// ParseFailureKind parses a stored failure kind ("" is FailureNone).
func ParseFailureKind(s string) (FailureKind, error) { return parse("failure kind", FailureKinds, s) }

// Attempt is one try at executing a task on a worker.
type Attempt struct {
	ID           uuid.UUID
	RunID        uuid.UUID
	TaskID       string
	Number       int   // 1, 2, ... per task run
	FencingToken int64 // unique across all attempts: epoch<<32 | per-leader counter
	WorkerID     string
	State        AttemptState
	FailureKind  FailureKind
	ExitCode     *int // nil when there is none (HTTP task, never started)
	HTTPStatus   *int // nil when there is none
	Output       []byte
	// OutputTruncated says bytes were dropped to respect MaxAttemptOutput (by the worker or
	// the store).
	OutputTruncated bool
	Error           string
	AssignedAt      time.Time
	StartedAt       time.Time
	DeadlineAt      time.Time // started + timeout + grace; zero until RUNNING
	FinishedAt      time.Time
	// StaleResultAt is when a result for this attempt arrived after it stopped being the
	// current attempt of its task; StaleOutcome is what that result said. Such results are
	// recorded, never applied.
	StaleResultAt time.Time
	StaleOutcome  string
}

// AttemptError is one attempt's failure, as kept in a dead letter.
type AttemptError struct {
	Attempt     int         `json:"attempt"`
	FailureKind FailureKind `json:"failure_kind"`
	Error       string      `json:"error"`
}

// DeadLetter records a task whose attempts were exhausted.
type DeadLetter struct {
	ID         uuid.UUID
	Namespace  string // its run's
	RunID      uuid.UUID
	TaskID     string
	Workflow   string
	Errors     []AttemptError // every attempt's error, in attempt order
	CreatedAt  time.Time
	ReplayedAt time.Time // zero until replayed; a dead letter is replayed at most once
}

// EventKind says what an event records. Stored as-is in events.kind.
type EventKind string

const (
	EventRunState       EventKind = "run_state"       // From/To are run states
	EventTaskState      EventKind = "task_state"      // From/To are task states
	EventAttemptStarted EventKind = "attempt_started" // Attempt is the number
	EventAttemptStale   EventKind = "attempt_stale"   // a stale result was recorded
	EventDeadLettered   EventKind = "dead_lettered"
	EventReplayed       EventKind = "replayed"
	EventNote           EventKind = "note" // free-form Message
)

// Event is one entry of a run's append-only history. Seq is assigned by the store and
// increases in insertion order.
type Event struct {
	Seq     int64
	At      time.Time
	RunID   uuid.UUID
	TaskID  string // empty for run-level events
	Kind    EventKind
	From    string
	To      string
	Attempt int
	Message string
}

// Schedule is a workflow's cron schedule.
type Schedule struct {
	Namespace  string
	Workflow   string
	Cron       string // 5-field cron
	Timezone   string // IANA name; "UTC" by default
	NextFireAt time.Time
	LastFireAt time.Time // zero until first fired
	UpdatedAt  time.Time
}

// Leadership is the fencing record of the current leader. Epoch only ever increases.
type Leadership struct {
	Epoch  int64
	Holder string
	Since  time.Time
}
