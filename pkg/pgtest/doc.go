// Package pgtest gives tests a real, throwaway PostgreSQL database.
//
// One server per test binary is started lazily from the installed server binaries (package
// pglocal) with fsync off; the first use migrates a template database once, and every
// NewDatabase clones that template (CREATE DATABASE ... TEMPLATE), which takes milliseconds,
// so each test gets an isolated, fully migrated database. Databases are dropped when their
// test ends and the server is stopped when the test binary exits.
//
// A package that uses pgtest must run its tests through Run:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
package pgtest
