// Package schedapi serves cairn.v1.SchedulerService on the scheduler: the mutations the gateway
// forwards to the leader (apply a workflow, start, cancel and retry runs, replay and purge
// dead letters, create and delete namespaces, set, delete and reseal secrets).
//
// Only the leader serves it: any other replica answers UNAVAILABLE with the leader's address.
// Each call returns after its effect is durable in PostgreSQL, written under the leader's
// epoch (a deposed leader's write fails with a stale epoch and the caller gets UNAVAILABLE).
//
//   - ApplyWorkflow parses the YAML (every problem becomes one cairn.v1.ValidationError in the
//     INVALID_ARGUMENT status details), stores the version, keeps the workflow's cron schedule
//     row in line with its `schedule:` (created, changed, or removed; an unchanged schedule
//     keeps its next fire time), and caches the parsed DAG for the engine.
//   - StartRun creates the run at the workflow's latest version through the engine
//     (Engine.StartRun): the run's rows, its move to RUNNING and its first decisions are one
//     group of the leader's group commit, durable before the call answers. Idempotent per
//     namespace and workflow on idempotency_key: a start whose key is taken writes nothing and returns the
//     existing run with existing=true.
//   - CancelRun cancels through the engine (NOT_FOUND for an unknown run, FAILED_PRECONDITION
//     for one that already ended).
//   - RetryRun, ReplayDeadLetter and PurgeDeadLetter go through the engine as well.
//   - Every call acts in the namespace its request names (empty: default). A run or dead
//     letter of another namespace is NOT_FOUND like a missing one; an unknown namespace is
//     NOT_FOUND naming it (checked only when a call finds nothing). Idempotency keys and
//     workflow names are per namespace.
//   - CreateNamespace and DeleteNamespace write under the leader's epoch like the rest, so
//     the leader stays the single writer. DeleteNamespace is FAILED_PRECONDITION while the
//     namespace holds a workflow, a run or a secret (the message says how many), and for
//     default.
//   - Secrets (secrets.go): the leader is the only process holding the keyring. SetSecret
//     seals the value under the active key before the store sees it and answers with
//     metadata; DeleteSecret needs no keyring; ResealSecrets moves every value to the active
//     key. No log line or error of this package carries a value (a bad one is described by its
//     length). ApplyWorkflow checks the workflow's {{ secret }} references against its
//     namespace: an unknown secret is INVALID_ARGUMENT naming it and the task (with the task's
//     position), and without a keyring any reference is FAILED_PRECONDITION naming the
//     setting (TestSchedulerServiceSecrets).
//
// Every mutation is logged with by=, the caller as authz.By describes it (the end user a
// gateway forwarded it for, cairn-principal, and the gateway's certificate name).
//
// Errors of the store, the engine and the parser are translated to gRPC codes once, in
// toStatus; nothing below it returns a status.
package schedapi
