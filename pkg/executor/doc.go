// Package executor runs one attempt of a task — a process (shell), an HTTP request (http) or
// nothing at all (noop) — and reports how it ended. It imports nothing of Cairn but the
// egress policy (pkg/egress, standard library only): the worker and the local runner convert
// their task specs into an Attempt, with every template already rendered.
//
//	d, err := executor.New(executor.Config{AllowedWorkdirRoots: []string{"/srv"}})
//	res := d.Execute(ctx, &executor.Attempt{RunID: "r1", TaskID: "extract", Number: 1,
//		IdempotencyKey: "r1/extract", Timeout: 5 * time.Minute,
//		Spec: executor.Spec{Type: executor.TypeShell,
//			Shell: &executor.ShellSpec{Argv: []string{"./extract.sh", "2026-01-01"}, Workdir: "/srv/etl"}}})
//
// # Contract of Execute
//
//   - It never panics (a panic becomes a FailureInternal result wrapping ErrPanic, with the
//     stack as Output) and never returns nil. Started and Finished are always set.
//   - Succeeded is true iff Failure is FailureNone. A failure is one of: Timeout (the
//     attempt's own Timeout expired), Cancelled (ctx ended first; Error carries
//     context.Cause(ctx), Err wraps it), ExitCode, UnexpectedStatus (including more redirects
//     than allowed), Connection, Internal (invalid spec, workdir rejected, executable not found
//     or not startable, bad environment, HTTP destination refused by the egress policy,
//     panic). See FailureKind.
//   - NoRetry is set only for an egress refusal: retrying cannot help, the task should fail
//     without using its retries (the worker and the local runner do so).
//   - ExitCode is -1 unless a process exited by itself with a code; HTTPStatus is 0 unless a
//     response arrived.
//   - Output holds at most Config.OutputCap bytes (default 64 KiB): the tail of a process's
//     combined stdout+stderr, the head of an HTTP response body. OutputTruncated says when
//     bytes were dropped.
//   - With Attempt.Redact set (the attempt was given secret values), Output, Error and the
//     message of Err are masked before Execute returns, a secret split by the truncation
//     included; Err still wraps the same errors (redact.go, TestRedactShellOutput,
//     TestRedactTruncatedTail, TestRedactHTTP).
//
// # Shell tasks
//
// Argv runs directly (no shell, no re-splitting: each element is one argument); Script runs
// as /bin/sh -c Script. Parameters reach a command only as argv elements or environment
// values rendered before this package sees them; nothing here splices text into a shell
// string.
//
// Environment. A task does not inherit the worker's environment. It gets Config.BaseEnv
// (by default only PATH, HOME, LANG and TMPDIR from the worker, see DefaultBaseEnv), then its
// own Env, then CAIRN_RUN_ID, CAIRN_TASK_ID, CAIRN_ATTEMPT and CAIRN_IDEMPOTENCY_KEY (the last
// only when the attempt has a key). A task that sets one of those four is rejected. Argv[0]
// is looked up on the task's PATH, not the worker's.
//
// Working directory. A Workdir must be absolute, contain no ".." element, exist, and — after
// resolving every symlink with filepath.EvalSymlinks — lie within one of
// Config.AllowedWorkdirRoots (also resolved); the process starts in the resolved path.
// With no roots configured, no task may set a Workdir (deny by default). A task without a
// Workdir runs in a fresh private (0700) scratch directory under Config.ScratchDir, removed
// when the attempt ends. A directory swapped for a symlink between the check and the start
// of the process is not caught (the check is not atomic with chdir).
//
// Process group. The process starts in its own process group (Setpgid), which every
// descendant inherits. When the attempt times out or is cancelled, and also whenever the
// leader exits while other members remain (a "sleep 1000 &" left behind), the whole group
// gets SIGTERM (and SIGCONT), then SIGKILL after Config.KillGrace (default 5s) if any member
// is still alive. Execute returns only once no live member remains. Zombies do not count:
// orphans are reaped by PID 1, whenever it gets to it, so on Linux liveness is read from
// /proc rather than from kill(-pgid, 0). Not covered: a descendant that leaves the group
// itself (setsid, setpgid) — only a cgroup could follow it; the output pipe is then drained
// for at most one second more. The group id is the leader's pid, which the kernel does not
// hand out again while any member lives; once the group is empty it could in principle be
// reused before our next check (a full wrap of the pid space between two polls).
//
// stdout and stderr share one pipe handed to the child as a file, read by a goroutine of
// ours into a tail buffer (at most 2×OutputCap bytes of memory), so a grandchild that holds
// the pipe cannot block Execute.
//
// # HTTP tasks
//
// Method (default GET), URL (http or https), Headers and Body are sent as given, through a
// transport built here (NewHTTPTransport: no proxy from the environment, the egress check at
// dial time) unless Config.HTTPTransport is set. The Idempotency-Key header is set to Attempt.IdempotencyKey
// unless the task sets it itself (compared case-insensitively) or the key is empty; it is kept
// across redirects. Success is a status in ExpectStatus, or any 2xx when that is empty. At
// most Config.MaxRedirects redirects are followed (default 5), then the attempt fails with
// UnexpectedStatus wrapping ErrTooManyRedirects; with NoRedirects a 3xx is the final answer.
// The attempt's timeout covers the whole exchange, body included.
//
// Egress. By default an HTTP task may not connect to loopback, link-local (169.254.169.254
// included), private, CGNAT, unique-local, unspecified, multicast, broadcast or reserved
// addresses, in any spelling (package egress lists the ranges); Config.EgressAllow opens CIDRs
// exactly. The URL's literal host and every redirect target's are checked before anything is
// sent, and each connection is checked again on the resolved address at dial time (DNS
// rebinding). A refusal fails the attempt with FailureInternal and NoRetry, Err wrapping
// ErrEgressDenied (and an *egress.DeniedError), Error naming the address, the rule, the flag
// that opens it and the request, e.g. "egress denied: 169.254.169.254 is link-local
// (169.254.0.0/16; allow it with --egress-allow): GET http://169.254.169.254/latest/"; a
// refused redirect keeps its 3xx as HTTPStatus. Shell tasks are not restricted by it.
//
// # Noop tasks
//
// Succeed at once (unless ctx is already done); for tests and benchmarks.
package executor
