// Package workerapi serves cairn.v1.WorkerService on the scheduler: the one bidirectional
// stream per worker through which the leader's engine assigns attempts and receives results.
//
// Connect, per stream:
//
//  1. A replica that is not the leader ends the stream at once with UNAVAILABLE, naming the
//     leader's address, so the worker re-resolves it.
//  2. The first message must be WorkerHello (INVALID_ARGUMENT otherwise). Every field the
//     engine relies on is checked (worker_id, capacity within 1..MaxCapacity, attempt ids and
//     non-zero fencing tokens of running attempts and pending results); a bad one is
//     INVALID_ARGUMENT naming the field.
//     With mutual TLS the hello's worker_id must be the name in the client certificate
//     (spiffe://cairn/worker/<id>), else PERMISSION_DENIED before the engine sees anything
//     (checkIdentity, TestHelloMustNameTheCertificatesWorker); the authz interceptor already
//     let only worker certificates open the stream. A hello for a worker id whose stream is
//     alive is refused with ALREADY_EXISTS (engine.ErrStreamAlive) and changes nothing.
//  3. The stream becomes an engine.Session: the handler's goroutine reads WorkerMessages and
//     feeds them to the engine (credits, started, result, draining; heartbeats only prove
//     liveness); one sender goroutine turns what the engine puts on Session.Out into
//     SchedulerMessages. Only the sender calls Send, only the reader calls Recv.
//  4. Secrets (secrets.go): a SecretsRequest is answered in a goroutine of its own (at most
//     2 × capacity at once per stream), never in the engine's loop, which it only asks from
//     memory whether the attempt, with that token, is this worker's on this stream and which
//     names its task references (engine.AttemptSecrets); the values are read and unsealed by
//     the SecretSource and go out on the sender only, never logged. Another worker's attempt
//     or a name the task does not reference is refused; a malformed request ends the stream
//     (TestWorkerStreamGivesSecretsOnlyToTheAssignedWorker). The reader alone starts these
//     goroutines and waits for them when it ends.
//  5. The stream ends when the worker closes it, when the engine kicks the session (a newer
//     stream of the same worker, a slow reader, a lost lease), or when the engine stops
//     (leadership lost: UNAVAILABLE). On every end the session is detached from the engine.
//
// Domain types never leave this package as protobuf: conversion happens here, at the edge.
package workerapi
