// Package app is the cairn-scheduler binary around the leader's engine: configuration, start-up,
// leadership transitions and shutdown.
//
// Start-up (Start): the ops server first (liveness holds while dependencies are awaited;
// readiness names the missing one), then PostgreSQL and etcd, each retried with capped backoff
// and every retry logged, so a dependency that is down neither crash-loops the process nor
// leaves it hanging silently; then the schema migration under the etcd lock
// <prefix>locks/migrations (replicas starting together take turns; the lock's fencing token is
// logged); then the gRPC server (WorkerService, SchedulerService) and the election campaign,
// whose value is this replica's advertised gRPC address.
//
// A leadership term (lead, the elector's OnElected):
//
//  1. raise the epoch in PostgreSQL (store.TakeLeadership; transient errors retried, a stale
//     epoch ends the term);
//  2. follow the worker registrations (membership.Watcher) and wait for its first full list;
//  3. build and run the engine (its rebuild sees the live workers), feed it every removed
//     registration (WorkerGone), and once it is ready publish the term to the API servers and
//     run the cron loop.
//
// Everything in a term derives from the elector's leader context: when the etcd session is
// lost, or on resign, the term is withdrawn from the API servers at once (they answer
// UNAVAILABLE and worker streams end), and the engine, the watcher and the cron loop stop.
//
// Shutdown (Stop, on SIGINT/SIGTERM): the elector stops first, which ends the term and deletes
// the leader key so a follower wins at once instead of after the session TTL; then the gRPC
// server stops gracefully within ShutdownTimeout; then the rest.
//
// Readiness (/readyz): PostgreSQL answers a ping, etcd answers a read, and a leader is known
// (this replica or another one). /metrics serves the instruments of package metrics and of
// otelgrpc.
package app
