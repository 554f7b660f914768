// Package pglocal runs a private PostgreSQL server from the server binaries installed on the
// machine (initdb, pg_ctl, postgres), for `cairnctl dev` and for tests (through pgtest).
//
// The binaries are found on PATH or under /usr/lib/postgresql/<version>/bin (newest first);
// when none is found, Start returns ErrBinariesNotFound with an install hint. PostgreSQL
// refuses to run as root, so when the calling process is root the server runs as the
// "postgres" system user in directories that user owns.
//
// The server listens on a private unix-socket directory (no port races) and, when Config.Port
// is set, also on 127.0.0.1:Port. It never listens on any other address.
package pglocal
