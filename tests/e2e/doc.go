// Package e2e holds Cairn's end-to-end tests: each test starts its own small cluster of the
// real binaries (tests/e2e/framework), drives runs through the public or leader API, injects
// faults (SIGKILL, SIGSTOP/SIGCONT, SIGTERM, a stopped PostgreSQL) and ends with
// CheckInvariants against PostgreSQL. Fault tests are named TestFailure* so that
// `make robustness` runs them in a loop. See docs/testing.md.
package e2e
