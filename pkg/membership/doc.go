// Package membership registers workers in etcd and lets the scheduler follow the live set.
//
// Layout: <prefix>workers/<worker-id> (default prefix "/cairn/") holds the worker's [Info] as
// JSON, attached to a lease the worker keeps alive: the lease is the worker's heartbeat.
//
// Invariants:
//   - A key exists exactly while its worker's lease lives. A clean exit (Registration.Close)
//     revokes the lease, so the key disappears at once; a crash or partition lets the lease
//     expire after its TTL. Either way watchers see the key deleted, and the scheduler's reaper
//     marks that worker's attempts lost.
//   - One live registration per worker ID: Register refuses an ID whose key still exists
//     (ErrAlreadyRegistered) instead of overwriting it, so a restarted worker never hides its
//     previous incarnation's death from the reaper. Each registration has its own
//     Incarnation (the key's create revision).
//   - Registration.Lost fires as soon as the worker can no longer count on its key: the
//     keepalive ended (lease expired, revoked, or etcd unreachable for a TTL), or the key was
//     deleted or taken over. The worker must then stop taking work; its running attempts
//     belong to the reaper now and their late results are fenced off by attempt tokens.
//   - A [Watcher] lists the prefix, then watches it from the listed revision. A watch that
//     breaks resumes from the last revision it applied; if that revision was compacted, it
//     lists again and emits the difference (removals, additions, replaced incarnations) so
//     its consumer never misses a removal.
//
// This package is one of the three that import the etcd client (with election and lock).
package membership
