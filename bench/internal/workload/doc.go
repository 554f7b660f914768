// Package workload holds the benchmark's workloads (issue #6) and Run, which runs the selected
// ones in order over one shared PostgreSQL and etcd, a fresh cluster each:
//
//	ceiling      pgbench, single-row UPDATE by primary key, 1 and 16 clients
//	validate     parse + validate + sort of wide and chain DAGs (pkg/dag, in process)
//	throughput   one wide run, and many concurrent small runs, per worker count
//	             (also the peak RSS of scheduler and workers during each)
//	hop          a chain of noop tasks: completion → successor's start
//	submit       runs started per second through REST and gRPC
//	pending      leader RSS holding many queued tasks with no worker connected
//	recovery     leader kill -9, leader SIGTERM, worker kill -9
//
// Invariants: every run a workload starts must end in the state the workload expects
// (SUCCEEDED, or CANCELLED for the pending workload, which cancels on purpose); each
// workload prints `<workload>.errors=N runs` counting those that did not. Timings come from
// PostgreSQL (attempts.assigned_at/started_at/finished_at, leadership.since), which the
// leader stamps with now() — the start of the transaction that recorded them — so they are
// as fine as its group commits. Nothing here asserts a speed.
package workload
