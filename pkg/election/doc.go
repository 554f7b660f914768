// Package election elects the one leading cairn-scheduler through etcd and tells everyone else
// who leads.
//
// Layout: candidates campaign under <prefix>scheduler/leader/ (default prefix "/cairn/"), each
// with a key <prefix>scheduler/leader/<lease-id-hex> bound to its own session lease and holding
// its gRPC address. The candidate whose key has the lowest create revision leads; the others
// wait, in create-revision order, for the keys before theirs to disappear
// (go.etcd.io/etcd/client/v3/concurrency.Election).
//
// An [Elector] runs the campaign loop of one candidate: grant a session lease (TTL default 5s),
// campaign, and on winning call OnElected(ctx, Leadership). Invariants:
//
//   - Epoch is the leader key's create revision. etcd revisions only grow, and a new
//     candidate's key is always created after the previous leader's, so epochs strictly
//     increase from one leader to the next. The scheduler raises its PostgreSQL epoch to it
//     and fences every write with it.
//   - The leader context is cancelled the moment leadership is known to be lost: the session's
//     keepalive ends (session.Done), the leader key is deleted or its watch breaks (a revoked
//     or expired lease shows up here before the next keepalive would), Resign, Stop, or the
//     parent context ends.
//   - Within one process the hand-over is strict: the key is deleted (resign) only after
//     OnElected has returned, so on Stop or Resign the next leader's OnElected starts after this
//     one's ended. When a session is lost instead (partition, GC pause longer than the TTL),
//     etcd may elect the next leader before the old one notices: leadership in etcd alone is
//     never proof, and every leader write is fenced by the epoch in PostgreSQL.
//   - Stop resigns (deletes the key, then revokes the lease) so a follower wins at once instead
//     of after a TTL.
//
// [Leader] and [Observe] read the election without campaigning: gateways and workers use them
// to find the leader's address and to follow changes.
//
// This package is one of the three that import the etcd client (with membership and lock).
package election
