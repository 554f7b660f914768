// Package proc runs one child binary at a time under a stable name: the end-to-end test
// framework (tests/e2e/framework) and the benchmark (bench/internal/cluster) start the
// Cairn binaries through it, kill them, freeze them and start them again.
//
// Invariants:
//   - A process is signalled only through os.Process, Go's handle of our own child (a pidfd
//     on Linux), never by a bare PID that may have been reused by an unrelated process.
//   - Children die with the parent (Pdeathsig SIGKILL): a crashed test or benchmark leaves no
//     Cairn binary behind.
//   - Every incarnation appends to the same log file, after a marker line naming it.
package proc
