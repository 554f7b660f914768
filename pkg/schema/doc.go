// Package schema applies the embedded migrations (package migrations) to a PostgreSQL
// database with golang-migrate. golang-migrate takes a PostgreSQL advisory lock while it
// migrates, so concurrent callers against one database serialise; binaries additionally run
// migrations under an etcd lock at start-up (see package lock) so they do not race to start.
package schema
