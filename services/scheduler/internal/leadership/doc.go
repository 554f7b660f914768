// Package leadership tells the scheduler's API servers whether this replica leads right now
// and, when it does not, who does.
//
// The leader side publishes a [Term] (the engine of the current leadership term, its epoch and
// holder) once the engine has rebuilt its state, and withdraws it the moment the term ends.
// The API handlers call [State.Current]: it returns the term only while the term is published
// and its engine still runs, and otherwise a *[NotLeaderError] carrying the address of the
// leader observed in etcd, which becomes gRPC UNAVAILABLE at the edge so clients re-resolve.
//
// Invariant: a handler never gets an engine whose term has ended (Current checks the engine's
// Done channel), and a term withdrawn by one leadership never clears the term of a later one
// (Clear is compare-and-swap).
package leadership
