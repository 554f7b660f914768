// Package framework runs a Cairn cluster of real binaries for end-to-end tests: a private
// PostgreSQL (pkg/pglocal, fsync off), an embedded etcd inside the test process
// (pkg/etcdlocal), and cairn-scheduler, cairn-worker and cairn-gateway processes on 127.0.0.1,
// each on free ports and with its own log file.
//
//	test process ──────────────┐
//	│ embedded etcd ◀──────────┼── schedulers ×N (one leads) ◀── workers ×M (bidi streams)
//	│ pgxpool (reads) ──▶ PostgreSQL ◀── leader writes, gateway reads
//	└ gRPC clients ──▶ leader SchedulerService, or the gateway when it runs
//
// What it owns and guarantees:
//
//   - Build compiles the binaries once per test binary (without -race, for speed) into a
//     temporary directory; Main removes it after the tests.
//   - Every process it starts is ended by its own PID when the test ends (SIGCONT, then
//     SIGKILL); it never signals a process it did not start. Children also get
//     Pdeathsig=SIGKILL so a crashed test binary leaves nothing behind.
//   - On failure, the tail of every process's log is written to the test log.
//   - Synchronisation is by polling with a deadline (Eventually, WaitRun), never bare sleeps.
//   - CheckInvariants reads PostgreSQL and checks the recording invariants of docs/invariants.md: exactly one
//     accepted success per task, no run left non-terminal, no accepted attempt whose fencing
//     token was not current (unless properly superseded by a later attempt), and every stale
//     result recorded as stale with its event.
package framework
