package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Every error the store returns for these conditions matches one of them
// with errors.Is; the typed errors below carry the details.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-set found the row in another state than expected (or an
	// insert found its key taken). Nothing was changed by that operation.
	ErrConflict = errors.New("conflict")
	// ErrStaleEpoch: the caller's leader epoch is not the current one; the transaction was
	// rolled back and nothing changed.
	ErrStaleEpoch = errors.New("stale leader epoch")
	// ErrStaleAttempt: a result carries a fencing token that is not the task's current
	// attempt (or the attempt already ended). It was recorded on the attempt row as stale;
	// nothing else changed.
	ErrStaleAttempt = errors.New("stale attempt")
	// ErrNotAssigned: a worker reported a result for an attempt assigned to another worker
	// (FinishAttempt.WorkerID). Nothing is recorded.
	ErrNotAssigned = errors.New("attempt not assigned to this worker")
	// ErrInvalidPageToken: a page token is malformed, tampered with, or belongs to another
	// query.
	ErrInvalidPageToken = errors.New("invalid page token")
	// ErrInvalidArgument: an operation or query was malformed (a programming or input error).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrAlreadyExists: a create found its key taken (a namespace of that name).
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotEmpty: a namespace to delete still holds workflows, runs or secrets
	// (*NotEmptyError says what).
	ErrNotEmpty = errors.New("not empty")
)

// ConflictError is the detail of an ErrConflict: which row, what the operation expected,
// and (when it could be read) what it found.
type ConflictError struct {
	Op       string // e.g. "task run 0190…/extract"
	Expected string // e.g. "state RUNNING, attempt 2, token 4294967297"
	Actual   string // e.g. "state RETRY_WAIT, attempt 2, token 4294967297"; empty if unknown
}

func (e *ConflictError) Error() string {
	if e.Actual == "" {
		return fmt.Sprintf("conflict: %s: expected %s", e.Op, e.Expected)
	}
	return fmt.Sprintf("conflict: %s: expected %s, found %s", e.Op, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// StaleEpochError is the detail of an ErrStaleEpoch.
type StaleEpochError struct {
	Epoch   int64 // the caller's
	Current int64 // the one stored in PostgreSQL
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("stale leader epoch: writing with epoch %d, current epoch is %d", e.Epoch, e.Current)
}

// Is makes errors.Is(err, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// StaleAttemptError is the detail of an ErrStaleAttempt.
type StaleAttemptError struct {
	Token   int64 // the token the result carried
	Current int64 // the task's current token (0 when the token is unknown)
	State   string
}

func (e *StaleAttemptError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("stale attempt: fencing token %d matches no attempt", e.Token)
	}
	return fmt.Sprintf("stale attempt: fencing token %d is not current (task's current token %d, attempt state %s)",
		e.Token, e.Current, e.State)
}

// Is makes errors.Is(err, ErrStaleAttempt) true.
func (e *StaleAttemptError) Is(target error) bool { return target == ErrStaleAttempt }

// NotAssignedError is the detail of an ErrNotAssigned.
type NotAssignedError struct {
	Token    int64
	Worker   string // who reported the result
	Assigned string // the worker the attempt was assigned to
}

func (e *NotAssignedError) Error() string {
	return fmt.Sprintf("attempt with fencing token %d is assigned to worker %q, not to %q", e.Token, e.Assigned, e.Worker)
}

// Is makes errors.Is(err, ErrNotAssigned) true.
func (e *NotAssignedError) Is(target error) bool { return target == ErrNotAssigned }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// Permanent reports whether err is a database error that retrying the same statements cannot
// fix: a constraint violation, bad data or a malformed statement (SQLSTATE classes 22, 23
// and 42). Connection failures, serialisation failures and server restarts are not
// permanent. The scheduler uses it to find the one group of a batch that can never commit
// instead of retrying the whole batch forever.
func Permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "22", "23", "42":
		return true
	}
	return false
}
