// Package schedapi serves cairn.v1.SchedulerService on the scheduler: the mutations the gateway
// forwards to the leader (apply a workflow, start and cancel runs).
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
//     workflow on idempotency_key: a start whose key is taken writes nothing and returns the
//     existing run with existing=true.
//   - CancelRun cancels through the engine (NOT_FOUND for an unknown run, FAILED_PRECONDITION
//     for one that already ended).
//   - RetryRun, ReplayDeadLetter and PurgeDeadLetter are UNIMPLEMENTED until the gateway issue
//     (#5) extends the engine for them.
//
// Errors of the store, the engine and the parser are translated to gRPC codes once, in
// toStatus; nothing below it returns a status.
package schedapi
