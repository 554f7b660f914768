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
//  1. take one input, then drain up to MaxBatch more without blocking;
//  2. handle each: mutate the in-memory runs and record, per input, one all-or-nothing
//     group of store operations plus the effects to perform once it is durable;
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
// whose token is not its task's current token is recorded stale, never applied.
package engine
