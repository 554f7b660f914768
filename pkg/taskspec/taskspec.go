// Package taskspec turns a DAG task, rendered for one run, into what an executor runs. The
// scheduler (for assignments) and the local runner both use it, so a task runs the same on a
// cluster and with `cairnctl run --local`. It is the one place pkg/dag and pkg/executor meet;
// neither imports the other.
//
// Secrets: FromDAG keeps the placeholders Render put where the workflow references a secret;
// ResolveSecrets, on the worker just before the attempt, replaces exactly the placeholders the
// rendering listed, only in env values and the http url, headers and body, and returns the
// values for the attempt's Masker. Invariants, with their tests: a run param cannot make the
// worker look up or place a secret the workflow did not put there
// (TestParamsCannotMakeTheWorkerSubstitute); placeholders in argv, script or workdir are never
// replaced (TestResolveSecretsOnlyInSecretFields); a missing secret is an error naming every
// missing one (TestResolveSecretsErrors).
package taskspec

import (
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
)

// FromDAG returns the executor spec of task t rendered as r (see dag.Task.Render).
func FromDAG(t *dag.Task, r dag.RenderedTask) executor.Spec {
	switch t.Type {
	case dag.TaskShell:
		return executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{
			Argv: r.Shell.Argv, Script: r.Shell.Script, Env: r.Shell.Env, Workdir: r.Shell.Workdir}}
	case dag.TaskHTTP:
		return executor.Spec{Type: executor.TypeHTTP, HTTP: &executor.HTTPSpec{
			Method: r.HTTP.Method, URL: r.HTTP.URL, Headers: r.HTTP.Headers, Body: r.HTTP.Body,
			ExpectStatus: r.HTTP.ExpectStatus}}
	default:
		return executor.Spec{Type: executor.TypeNoop}
	}
}
