// Package localrun runs one workflow run in-process: no PostgreSQL, no etcd, no workers.
// It backs `cairnctl run --local`, the way `airflow dags test` runs a DAG on one machine.
//
// The runner follows the same rules as the cluster: tasks start in topological order (ties in
// declaration order) once their trigger rule says run, Skip and UpstreamFailed decisions
// cascade downstream, a failed attempt is retried after the task's backoff (full jitter) until
// its retries are spent (except a failure the executor marks NoRetry, an egress refusal, which
// fails the task at once), every attempt gets its task's timeout, and at most Parallel tasks
// (and at most the workflow's max_active_tasks) run at once. With Parallel 1 tasks run one at a
// time in topological order.
//
// A run SUCCEEDS when every task ends succeeded or skipped, and FAILS when any task ends failed
// or upstream_failed. Cancelling the context stops running attempts (their process groups are
// killed), marks what never ran cancelled, and ends the run CANCELLED.
//
// Secrets ({{ secret "name" }}) come from Config.Secrets, built by LoadSecrets from a secrets
// file of name=value lines and CAIRN_SECRET_<NAME> variables, never from argv. Every referenced
// secret is looked up before the run starts (a missing one is an error naming it and its
// variable); each attempt gets the values in its spec only when it starts, as on a worker
// (taskspec.ResolveSecrets), and the output and errors in events and in the Report are masked
// with all of the run's values (pkg/mask). Tested by TestSecretsResolvedAndMasked and
// TestMissingSecretsFailBeforeTheRun.
//
// Nothing is stored: the Report returned is the only record of the run.
package localrun
