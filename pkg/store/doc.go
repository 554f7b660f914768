// Package store is Cairn's PostgreSQL persistence (pgx v5, pgxpool, plain SQL). It owns
// every query against the schema in package migrations; nothing else in Cairn speaks SQL.
//
// Invariants it enforces (see docs/store.md for the tables):
//
//   - Every state change is a compare-and-set: an UPDATE guarded by the expected state and
//     attempt number (and fencing token where one applies). An UPDATE that matches no row
//     changed nothing and is reported as *ConflictError (errors.Is ErrConflict), never
//     applied twice.
//   - Every write runs in a transaction whose first statement locks the leadership row
//     FOR SHARE and compares the caller's epoch; a mismatch rolls back with ErrStaleEpoch.
//     TakeLeadership's UPDATE of that row therefore waits for in-flight writes of the old
//     leader, and none of the old leader's later writes can commit.
//   - A worker result whose fencing token is not the task's current attempt is recorded on
//     its attempt row as stale (and as an attempt_stale event) and changes nothing else
//     (ErrStaleAttempt). A result that names its reporting worker (FinishAttempt.WorkerID)
//     for an attempt assigned to another worker applies and records nothing
//     (ErrNotAssigned; TestResultOfAnotherWorker).
//   - Writes are applied in batches (Store.Apply) of all-or-nothing groups; a conflicting
//     group changes nothing while the other groups commit (group commit). A batch runs
//     set-based — one statement per op kind, ops placed so that the outcome equals applying
//     them in order (batchset.go) — and, only when a multi-op group conflicted, again one
//     statement per op with a savepoint per group.
//   - Listings use keyset pagination with opaque, checksummed page tokens bound to their
//     query (ErrInvalidPageToken otherwise).
//   - Every read and write of a workflow, run, attempt, event, dead letter or schedule names
//     its namespace; a row of another namespace is ErrNotFound (an empty listing), exactly
//     like a missing one (TestCrossNamespaceIDsAreNotFound). Names and idempotency keys are
//     per namespace (TestSameNamesInTwoNamespaces). A namespace is deleted only when it holds
//     nothing, whatever writes race with the delete (TestNamespaceLifecycle,
//     TestConcurrentCreateRunAndDeleteNamespaceLeaveNoOrphan). The leader's task-level writes
//     (task runs, attempts, events) need no namespace: they reach it through their run.
//   - A secret is stored only sealed (secretbox.Sealed: key ID, nonce, ciphertext): the store
//     never receives a value in clear, and the secrets table has no column for one
//     (TestSecretLifecycle). A namespace holding secrets is not empty
//     (TestNamespaceWithSecretsIsNotEmpty). ResealSecrets moves every value to the active key
//     without changing it, and leaves a row it cannot open as it was (TestResealSecrets).
//
// Reads use the pool directly, or a read-only REPEATABLE READ transaction when they combine
// several queries (a run with its task runs, the failover rebuild).
package store
