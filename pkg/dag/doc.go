// Package dag owns Cairn's workflow file format: it parses a YAML workflow, validates it, and
// answers the graph questions the scheduler, the workers and the local runner ask of it. It
// imports nothing else of Cairn's. The format reference for users is docs/dag-format.md.
//
// # Parsing
//
// Parse decodes the yaml.v3 node tree itself, field by field, so that every problem carries a
// file:line:column position and its task, unknown fields and duplicate keys are errors, and types
// are strict (a duration is a string with a unit, retries an integer). It reports every problem
// it finds, sorted by position, as an ErrorList, one compiler-style line each:
//
//	etl.yaml:14:5: task "load": depends_on "extrct" is not a task in this workflow (did you mean "extract"?)
//
// Invariant: a *Workflow returned by Parse is valid. Everything below has been checked, its Graph
// is acyclic, and each task's Retries, Backoff, Timeout and Pool are resolved (task value, else
// defaults:, else DefaultBackoff, DefaultTimeout, DefaultPool, 0 retries).
//
// Before decoding, the whole tree is walked once against Limits: file size, node count with every
// alias expansion counted (no billion-laughs blow-up, self-referencing anchors included), nesting
// depth and explicit tags. Then task count, string, URL and body lengths and list and map sizes are
// checked field by field. A zero Limits field means its default (DefaultLimits).
//
// Files in the plain block-style subset of YAML that workflows are written in (no anchors, tags,
// block scalars, multi-line scalars or multi-line flow collections; ASCII only) are read by a
// fast path, fastYAML, that builds the very tree yaml.v3 would (same kinds, tags, values, styles,
// lines, columns; comments are dropped) in a few large allocations; anything else, and anything it
// is unsure of, goes to yaml.v3. Invariant: which path ran never changes a result, an error
// message or a position. The tests check every tree the fast path builds against yaml.v3's, and
// FuzzFastYAMLMatchesYAML searches for a difference.
//
// # Names
//
// Workflow names, task ids and pools follow one rule, [a-z0-9][a-z0-9_.-]{0,127}: lower case so two
// ids never differ by case only, and safe unescaped in URL paths, file names, environment values
// and metric labels. Parameter names are [A-Za-z_][A-Za-z0-9_]{0,63}, so .params.NAME works in a
// template. Env variable names are [A-Za-z_][A-Za-z0-9_]* and may not start with CAIRN_ (reserved
// for CAIRN_RUN_ID, CAIRN_TASK_ID, CAIRN_ATTEMPT); the Idempotency-Key header is Cairn's too.
//
// # Templates and the shell
//
// Argv elements (except the program, argv[0]), env values, workdir, the http url, header values
// and body may hold Go text/template actions. Templates see only .params, a map of strings (and
// secret references, below): every
// field reference must be .params.NAME with NAME declared, checked on the parse tree (so a branch
// the defaults never take is checked too), and each template is executed against the declared
// defaults with missingkey=error when the file is validated. They substitute, they do not compute:
// only output and if/else actions, and the functions and, or, not, eq, ne, lt, le, gt, ge, len,
// print, printf, println, html, js and urlquery. Rendered output is capped at the field's limit.
//
// Parameters never become shell code. A string command is a script for /bin/sh -c and may not
// hold a template at all; pass values through env and quote them in the script:
//
//	env: {DAY: "{{ .params.day }}"}
//	command: 'echo "loading $DAY"'
//
// The same holds for the argument after -c when argv runs a shell itself (sh, bash, dash, zsh,
// ksh, ash or busybox, with -c or a cluster such as -ec). That check is best effort: a shell started
// through a wrapper such as env is not recognised, so do not pass templates to one. In every other
// argv element a parameter is one argument, whatever it contains.
//
// Task.Render expands a task for one run (run params override defaults; an undeclared run param is
// an error) and checks the result again, so a run param cannot make a URL non-http or split a
// header.
//
// # Secrets
//
// {{ secret "name" }} references a secret (names follow the workflow-name rule). It must be an
// action of its own (not piped, passed to a function or tested in if; the name a quoted string,
// never a parameter) and may appear only in env values and the http url, header values and
// body: elsewhere, including argv, workdir, scripts, pool and param defaults, it is a
// validation error at the field's position (TestSecretPlacement). Parse records each task's
// names, every branch included, in Task.Secrets; Workflow.Secrets is their union, for the
// apply path to check against the namespace (TestSecretsCollected).
//
// Render never sees a value. Each reference becomes a placeholder,
// cairn-secret-<name>-<nonce>, with a 128-bit nonce drawn once per Render call, and
// RenderedTask.Secrets lists the (name, placeholder) pairs that call made; the worker replaces
// exactly those (TestRenderKeepsSecretPlaceholders). Invariant: a run param cannot add a
// reference or redirect one. Its value is copied as data, so any placeholder-looking text in it
// carries another nonce than the table's, and a placeholder is replaced as a whole, so text glued
// after one cannot extend its name (TestRunParamsCannotForgeSecretReferences, and in
// pkg/taskspec the same attack through the substitution). A URL that starts with a placeholder
// (a webhook URL kept as a secret) is checked on the worker, once the value is in.
//
// # Trigger rules
//
// A pending task's trigger rule maps the outcomes of its upstream tasks to a Decision. Cancelled
// upstream tasks count as done, and as failures only where the table says so; Failed includes
// dead-lettered tasks. The first matching row wins:
//
//	rule         condition                                        decision
//	all_success  any failed, upstream_failed or cancelled         UpstreamFailed
//	             all succeeded (or no upstream)                   Run
//	             all done (so some skipped)                       Skip
//	all_done     all done (or no upstream)                        Run
//	one_success  any succeeded                                    Run
//	             all done and all skipped (or no upstream)        Skip
//	             all done                                         UpstreamFailed
//	one_failed   any failed or upstream_failed                    Run
//	             all done (or no upstream)                        Skip
//	none_failed  any failed, upstream_failed or cancelled         UpstreamFailed
//	             all done (or no upstream)                        Run
//	any rule     otherwise                                        Wait
//
// A decision other than Wait never changes as more upstream tasks finish, so a run's final states
// depend only on its tasks' outcomes, not on the order in which they finished.
//
// Rules that can never fire are validation errors: one_success and one_failed on a task with no
// upstream, and one_failed when every upstream task is a noop task without upstream (a root noop
// always succeeds). Other rules can always fire, given the right upstream outcomes.
//
// # Graph
//
// Graph stores adjacency as int slices (compressed rows), not maps of strings. Every algorithm is
// iterative and linear in tasks plus edges, so a 100,000-task chain is fine. Order is the
// depth-first topological order over upstream edges taken in declaration order: each task comes
// right after its not-yet-listed upstream tasks, and a file whose tasks are already in a valid
// order gets that order back. Ready decides a whole run (start, failover); Affected decides only
// what one finished task changes, including the cascade of Skip and UpstreamFailed decisions.
package dag
