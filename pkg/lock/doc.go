// Package lock provides distributed locks in etcd with fencing tokens: one holder at a time
// for work such as database migrations at start-up or one-off maintenance.
//
// Layout: a lock named N lives under <prefix>locks/N/ (default prefix "/cairn/"). Each
// contender puts <prefix>locks/N/<lease-id-hex> under its own session lease; the key with the
// lowest create revision holds the lock and the others wait, in create-revision order, for the
// keys before theirs to go (go.etcd.io/etcd/client/v3/concurrency.Mutex).
//
// Invariants:
//   - Token() is the holder's key create revision. Holders acquire in create-revision order,
//     so tokens strictly increase from one holder to the next: a resource that remembers the
//     largest token it has seen can refuse a stale holder's late write (fencing).
//   - Holding is bounded by the session lease. If the holder's keepalive ends (crash,
//     partition, lease revoked) its key is deleted and the next contender acquires; the
//     holder's Context() is cancelled (cause ErrLost) as soon as that is seen, by its
//     keepalive or by a watch on its key. Work under the lock must watch that context — and,
//     because a paused holder may notice late, should be fenced by the token.
//   - Release deletes the key and revokes the lease, so the next contender acquires at once.
//     A contender that gives up (context cancelled) removes its waiting key.
//
// This package is one of the three that import the etcd client (with election and membership).
package lock
