// Package cluster starts the Cairn cluster the benchmark drives: one PostgreSQL (fsync on,
// default durability) and one embedded etcd shared by every workload, and per workload a fresh
// database, etcd prefix and set of real processes (schedulers, workers, gateway) on loopback.
//
// It starts its processes through pkg/proc, as tests/e2e/framework does, but without the
// testing package: every failure is a returned error.
//
// Invariants:
//   - Every process is a child of this process, started with Pdeathsig=SIGKILL, and is ended
//     through its own process handle (never by name) when its cluster closes.
//   - Clusters never share state: each gets its own database and etcd key prefix, so a
//     workload starts from empty tables.
//   - The binaries are built once, without the race detector.
package cluster
