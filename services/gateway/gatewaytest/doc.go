// Package gatewaytest starts a real cairn-gateway for tests, on a throwaway PostgreSQL
// (pkg/pgtest: call pgtest.Run from TestMain) and an embedded etcd (pkg/etcdtest), with a
// stand-in scheduler leader: a SchedulerService server elected through a real election
// (pkg/election) that writes to the same PostgreSQL through pkg/store under its epoch.
//
// The stand-in implements ApplyWorkflow, StartRun (idempotency keys through the store's
// unique key) and CancelRun; RetryRun, ReplayDeadLetter and PurgeDeadLetter answer
// UNIMPLEMENTED, as the real scheduler does for now. It runs no tasks: tests drive runs
// forward with Cluster.Finish. It is a test peer, not a mock of PostgreSQL or etcd.
package gatewaytest
