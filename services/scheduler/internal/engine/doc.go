// Package engine is the leader's orchestration core: it owns the in-memory state of every
// active run, decides what runs next, routes tasks to workers, and writes every state change
// to PostgreSQL with group commit before acting on it.
//
// One goroutine (Run's loop) owns all state; nothing else touches it, so there are no locks.
// Everything else talks to it through bounded channels: worker sessions (hello, credits,
// started, result), API calls (plan a new run, cancel a run), the membership watcher (worker
// gone) and its own timers (retry due, attempt deadline, adoption grace).
//
// The loop, per batch:
//
//  1. take one input, then drain up to MaxBatch more without blocking (without waiting at
//     all while deferred planning is left, see 2);
//  2. apply deferred trigger-rule decisions, oldest first, then handle each input: mutate
//     the in-memory runs and record, per input, one all-or-nothing group of store
//     operations plus the effects to perform once it is durable. At most Config.PlanChunk
//     decisions (PENDING → QUEUED, SKIPPED, UPSTREAM_FAILED) are applied per batch; the
//     rest wait, in order, on their run's deferred list, so a run of 10,000 tasks starts
//     over several bounded transactions. A deferred task is PENDING in memory and in
//     PostgreSQL alike, so a leader that dies between chunks leaves a state the next
//     leader's rebuild plans again (Graph.Ready);
//  3. write the starts workers reported in this batch, except those of attempts that also
//     ended in it: a result carries its attempt's start in its own group (ASSIGNED →
//     RUNNING, then the outcome), so a short task costs two commits, not three
//     (Config.StartDelay can hold starts longer, waiting for their results);
//  4. dispatch: give queued tasks to workers that have credits (one group per assignment);
//  5. commit every group in one transaction (store.Apply), which checks the leader epoch first;
//  6. perform the effects of the groups that applied: send assignments, acknowledge
//     results, answer callers, arm timers. A group that conflicted means memory and
//     PostgreSQL disagree about a run: its effects are dropped and the run is reloaded.
//
// Invariants kept here: state is durable before anyone acts on it (no assignment is sent, no
// result acknowledged, no API call answered before its commit); a stale epoch stops the
// engine at once (Run returns an error wrapping store.ErrStaleEpoch) and nothing more is
// sent; every fencing token is epoch<<32 | n, unique and increasing across leaders; a result
// whose token is not its task's current token is recorded stale, never applied; no batch
// applies more than Config.PlanChunk trigger-rule decisions; a run executes its own
// namespace's DAG (the WorkflowCache and the rebuild key versions by namespace, name and
// version) and an API call naming another namespace finds nothing
// (TestNamespacesInTheEngine).
//
// Worker identity (the stream's WorkerID, which the gRPC edge checked against the worker's
// certificate): a start or a result for an attempt counts only from the worker it was
// assigned to — another worker's result is refused and nothing is recorded, for a current
// attempt here, for a stale one by the store (FinishAttempt.WorkerID, ErrNotAssigned)
// (TestResultOfAnotherWorkerIsRefused); a hello for a worker id whose session is alive
// (not ended, heard from within Config.StreamTimeout) is refused with ErrStreamAlive and
// changes nothing, while a dead session is replaced as a restarted worker's must be
// (TestSecondHelloForALiveStreamIsRefused, TestHelloReplacesADeadStream).
//
// Memory: a leader may hold hundreds of thousands of queued tasks, so the per-task state
// (taskState) is a ~100-byte value in one slice per run; what the workflow says about a
// task (id, pool, retry policy, timeout) is read from the run's shared *dag.Workflow.
package engine
