// Package etcdtest starts an embedded etcd for tests: a real etcd server on loopback,
// never a mock. Each call starts a fresh server in the test's temporary directory and stops
// it when the test ends, so tests share no etcd state.
package etcdtest
