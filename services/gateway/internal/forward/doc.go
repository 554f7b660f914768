// Package forward sends the gateway's mutations to the current scheduler leader over the
// internal SchedulerService.
//
// A Forwarder follows the election (election.Observe) and keeps one gRPC client connection to
// the leader's published address, replaced whenever the leader (or its address) changes. Calls
// go through Do, which bounds them by the forward timeout.
//
// Invariants:
//
//   - A call does not wait for a leader to appear: with no leader known when it starts, Do
//     fails at once with UNAVAILABLE (and a RetryInfo detail), so clients are told to retry
//     instead of hanging.
//   - UNAVAILABLE from a known leader (it was deposed, or it is stopping mid-failover) is
//     retried with a short backoff, re-reading the leader each time and waiting for the next
//     one while the election is in progress, until the forward timeout; then UNAVAILABLE is
//     returned. Every other status from the leader is returned
//     unchanged (code, message and details), so the leader's errors reach the client as-is.
//   - Retrying on UNAVAILABLE can repeat a mutation whose request reached a leader that died
//     before answering. Every forwarded mutation is idempotent or compare-and-set on the leader
//     except StartRun without an idempotency key; clients that need exactly-once run creation
//     pass an idempotency_key. (A repeated CreateNamespace or DeleteNamespace applies once; its
//     repetition answers ALREADY_EXISTS or NOT_FOUND.)
//   - Connections belong to the Forwarder: the one to a former leader is closed when the leader
//     changes, and Stop closes the current one.
package forward
