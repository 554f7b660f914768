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
//   - StartRun creates the run at the workflow's latest version (idempotent per workflow on
//     idempotency_key: the same key returns the existing run with existing=true), then hands it
//     to the engine. Once created the run is durable; if leadership is lost before the engine
//     has it, the next leader's rebuild starts it.
//   - CancelRun cancels through the engine (NOT_FOUND for an unknown run, FAILED_PRECONDITION
//     for one that already ended).
//   - RetryRun, ReplayDeadLetter and PurgeDeadLetter are UNIMPLEMENTED until the gateway issue
//     (#5) extends the engine for them.
//
// Errors of the store, the engine and the parser are translated to gRPC codes once, in
// toStatus; nothing below it returns a status.
package schedapi
