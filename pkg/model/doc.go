// Package model is Cairn's domain model: namespaces, workflows and their immutable versions,
// runs, task runs, attempts, dead letters, events, schedules and leadership, plus the run,
// task and attempt state machines. A workflow and a run belong to one namespace; task runs,
// attempts, events and dead letters belong to their run's.
//
// The package is plain Go and imports nothing of Cairn's: the store, the planner and the API
// edge all convert to and from these types. It owns two things:
//
//   - The vocabulary. Every enumerated value (states, triggers, failure kinds) is a string
//     type whose values are exactly what PostgreSQL stores ('PENDING', 'exit_code', ...); the
//     schema repeats them in CHECK constraints, and a test keeps both in step.
//   - The transition tables. Which state may follow which is decided here and only here:
//     CheckRunTransition, CheckTaskTransition and CheckAttemptTransition return a typed
//     *InvalidTransitionError for anything not in the table.
//
// Task life cycle (the common path on top, retries and recovery below):
//
//	PENDING ──▶ QUEUED ──▶ ASSIGNED ──▶ RUNNING ──▶ SUCCEEDED
//	   │          ▲ ▲         │            │ ├──▶ RETRY_WAIT ──▶ QUEUED
//	   │          │ └─ lost ──┘            │ └──▶ FAILED | DEAD_LETTERED
//	   │          └──────── lost ──────────┘
//	   └──▶ SKIPPED | UPSTREAM_FAILED | CANCELLED
//
//	FAILED | DEAD_LETTERED | UPSTREAM_FAILED | CANCELLED ──▶ PENDING (run retry) | QUEUED (replay)
//	SKIPPED ──▶ PENDING (run retry re-evaluates it)
//
// "Terminal" means no progress happens without an operator action (retry, replay); it does
// not mean no transition leaves the state.
package model
