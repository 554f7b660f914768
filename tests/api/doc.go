// Package api holds the acceptance tests of Cairn's public surface (issue #5): each test
// starts its own cluster of the real binaries with a gateway (tests/e2e/framework) and drives
// it only through what a user has — the REST API on the gateway's HTTP address and the
// cairnctl binary on its gRPC address — then checks the outcome in PostgreSQL and ends with
// the framework's CheckInvariants.
//
// What the suite proves, one test each: a workflow applied and run over REST succeeds and its
// attempts show their output; the OpenAPI document lists the routes; cairnctl's apply, run
// --wait (exit 0 on success, 1 on failure), runs list and attempts work end to end; a failing
// task retries, is dead-lettered with every attempt's error, fails its run and marks its
// downstream tasks UPSTREAM_FAILED, and a replay after the cause is fixed completes the run;
// cancelling a run kills its running shell task's whole process tree; fifty concurrent starts
// with one idempotency key make one run; and every bad input is answered 4xx with a message
// naming the problem while PostgreSQL stays unchanged.
//
// Invariants of the suite: tests never sleep to synchronise (they poll with a deadline), never
// assert wall-clock speed, and end every process they start by its PID (the framework's
// processes, and the cairnctl invocations, which are waited for). See docs/testing-api.md.
package api
