// Package dev implements `cairnctl dev`: all of Cairn in one process on one machine, for a
// first try and for development.
//
// It starts, in order: an embedded etcd (data under DIR/etcd), a local PostgreSQL from the
// installed server binaries (data under DIR/pg, fsync on, so a restart keeps history; or the
// database at CAIRN_DATABASE_URL), one scheduler, the gateway and a worker pool, all on
// loopback. Its workers allow HTTP tasks to call loopback (--egress-allow 127.0.0.0/8,::1/128,
// printed in the banner); everything else the egress policy blocks stays blocked. It then
// applies every workflow in the examples directory and prints the
// addresses and a first command to try. Ctrl-C (the context ending) stops everything in
// reverse order, including the PostgreSQL it started.
//
// Before starting anything it checks that every port it needs is free, so a port already in
// use is one clear message, not a half-started cluster.
package dev
