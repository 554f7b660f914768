// Package worker is cairn-worker: it registers the worker in etcd, keeps one stream open to
// the leader, runs the attempts the leader assigns in a pool of slots, and drains on SIGTERM.
// docs/worker.md is the operator's and protocol reference; this comment states what the code
// guarantees.
//
//	etcd workers/<id> (leased) ◀── register, re-register after a lost lease
//	etcd scheduler/leader/…    ──▶ followLeader ──▶ connectLoop ◀──▶ leader (WorkerService.Connect)
//	                                                    │   out: Hello, Credits, Started, Heartbeat, Result, Draining, SecretsRequest
//	                                                    │   in:  Welcome, Assignment, ResultAck, Cancel, Drain, SecretsResponse
//	                                                    ▼
//	                             slots: one goroutine per attempt → executor.Execute
//
// # Ownership
//
// Run owns everything it starts and returns only when all of it has ended: the leader
// follower, the connect loop (one session at a time, each with a sender and a heartbeat
// goroutine), one goroutine per running attempt, the registration's keepalive, the ops
// server, the telemetry providers and the etcd client. All mutable state lives in Worker
// under one mutex; a session's messages are queued (non-blocking, bounded) to its sender
// goroutine, so no lock is held across network I/O.
//
// # Invariants
//
//   - Slots: a slot is busy from the Assignment that takes it until the attempt's result is
//     in the outbox; the outbox has room for capacity results that hold no slot, and each
//     result beyond those holds one until an acknowledgement. running + credits granted and
//     unused + max(0, results awaiting ack − capacity) ≤ capacity, always; the outbox
//     therefore never holds more than 2 × capacity results, and a worker never grants more
//     credits than it has free slots.
//   - Credits are incremental and per stream: the leader starts each stream at zero; after its
//     Welcome the worker grants every free slot, then one more each time a slot frees. No
//     credit is granted while draining or while the lease is lost.
//   - An Assignment without credit is a leader bug: it is handed back at once (FAILED,
//     CANCELLED, error saying so) and never started; that reply is sent once and not kept,
//     since no slot holds it.
//   - Every result stays in the outbox until a ResultAck with its result_id arrives, accepted
//     or not, and is resent in the Hello of every new stream: all of them, since the leader
//     declares lost any attempt of the worker a Hello does not mention (outputs are cut to
//     fit 2 MiB in all when needed). Result ids are unique (attempt id + random).
//   - Running attempts survive reconnects and leader changes; each Hello lists them with
//     their fencing tokens. An attempt a Welcome rejects is killed and reports nothing.
//   - A CancelAttempt whose fencing token does not match the running attempt is ignored.
//   - Every attempt the worker stops itself (leader cancel, lost lease, drain timeout) ends
//     FAILED with failure kind CANCELLED, which the leader treats as "handed back": the task
//     is re-queued, not blamed. Result.Error says which it was.
//   - Lost lease: no more credits, the stream is closed, every running attempt is killed and
//     waited for, the old lease is revoked, and the worker registers again (retrying with
//     backoff) before it reconnects; the killed attempts' results go out in that Hello.
//   - Secrets (secrets.go): an attempt whose Assignment lists secrets asks the leader for
//     the values on the current welcomed stream, again on the next stream after a reconnect
//     or 5 s without an answer, for at most 20 s; it runs with exactly the listed
//     placeholders replaced, its output and error masked with every form of the values
//     (Attempt.Redact), and every line the worker logs masked with the values of the attempts
//     running (a mask.Handler over Worker.masks) until its result is kept. A secret the
//     leader reports missing fails the attempt with no_retry, naming it; any other failure to
//     resolve fails it as INTERNAL (TestSecretsAreAskedForMaskedAndRetriedOnANewStream).
//     Values are never written to disk or sent back.
//   - Drain (ctx cancelled or a leader's Drain): Draining is sent, assignments still in
//     flight are handed back, running attempts get the drain timeout (then are cancelled),
//     results get the rest of it (at least 1 s) to be acknowledged, then the lease is revoked
//     (the key disappears at once) and Run returns nil.
package worker
