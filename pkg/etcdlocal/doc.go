// Package etcdlocal runs an embedded single-member etcd server on loopback.
//
// It exists for `cairnctl dev` and for tests (through package etcdtest): production
// deployments talk to a real etcd cluster and never link this package, which pulls in the
// whole etcd server. The server listens on 127.0.0.1 only; port 0 picks free ports and the
// real client address is read back after start-up.
package etcdlocal
