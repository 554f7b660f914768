package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables the shell executor sets on every task; a task may not set them.
const (
	EnvRunID          = "CAIRN_RUN_ID"
	EnvTaskID         = "CAIRN_TASK_ID"
	EnvAttempt        = "CAIRN_ATTEMPT"
	EnvIdempotencyKey = "CAIRN_IDEMPOTENCY_KEY"
)

var reservedEnv = []string{EnvRunID, EnvTaskID, EnvAttempt, EnvIdempotencyKey}

// ScriptShell runs ShellSpec.Script, as ScriptShell -c Script.
const ScriptShell = "/bin/sh"

// fallbackPath is the child's PATH when the worker has none.
const fallbackPath = "/usr/local/bin:/usr/bin:/bin"

// outputDrainTimeout bounds reading the output pipe once the process group is gone: only a
// process that left the group (setsid) can still hold the pipe open, and it is not waited for.
const outputDrainTimeout = time.Second

// killWait bounds the wait for the group to vanish after SIGKILL (which cannot be caught; only
// a process stuck in the kernel survives it for long).
const killWait = 5 * time.Second

// DefaultBaseEnv returns the part of the worker's environment a shell task inherits when
// Config.BaseEnv is nil: PATH, HOME, LANG and TMPDIR, those that are set (PATH falls back to
// /usr/local/bin:/usr/bin:/bin). Nothing else of the worker leaks into tasks: no credentials,
// no CAIRN_DATABASE_URL, no proxy settings.
func DefaultBaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		} else if k == "PATH" {
			env = append(env, "PATH="+fallbackPath)
		}
	}
	return env
}

type shell struct {
	roots      []string // cleaned absolute paths, symlinks not yet resolved
	scratchDir string
	outputCap  int
	killGrace  time.Duration
	baseEnv    []string
	cred       *syscall.Credential // the task user; nil: the worker's
}

func newShell(cfg Config) *shell {
	return &shell{
		roots:      cfg.AllowedWorkdirRoots,
		scratchDir: cfg.ScratchDir,
		outputCap:  cfg.OutputCap,
		killGrace:  cfg.KillGrace,
		baseEnv:    cfg.BaseEnv,
		cred:       cfg.TaskCredential,
	}
}

func (s *ShellSpec) validate() error {
	if s == nil {
		return fmt.Errorf("%w: shell task without a shell spec", ErrInvalidSpec)
	}
	switch {
	case len(s.Argv) > 0 && s.Script != "":
		return fmt.Errorf("%w: shell task sets both argv and script; set one", ErrInvalidSpec)
	case len(s.Argv) == 0 && s.Script == "":
		return fmt.Errorf("%w: shell task sets neither argv nor script", ErrInvalidSpec)
	case len(s.Argv) > 0 && s.Argv[0] == "":
		return fmt.Errorf("%w: argv[0] (the program) is empty", ErrInvalidSpec)
	}
	for i, arg := range s.Argv {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("%w: argv[%d] contains a NUL byte", ErrInvalidSpec, i)
		}
	}
	if strings.IndexByte(s.Script, 0) >= 0 {
		return fmt.Errorf("%w: script contains a NUL byte", ErrInvalidSpec)
	}
	for k, v := range s.Env {
		if slices.Contains(reservedEnv, k) {
			return fmt.Errorf("%w: %s is set by Cairn and may not be set by a task", ErrInvalidEnv, k)
		}
		if err := checkEnvVar(k, v); err != nil {
			return err
		}
	}
	if s.Workdir != "" {
		if !filepath.IsAbs(s.Workdir) {
			return fmt.Errorf("%w: %q is not an absolute path", ErrWorkdir, s.Workdir)
		}
		if slices.Contains(strings.Split(s.Workdir, "/"), "..") {
			return fmt.Errorf("%w: %q contains a '..' element", ErrWorkdir, s.Workdir)
		}
	}
	return nil
}

func checkEnvVar(k, v string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty name", ErrInvalidEnv)
	case strings.ContainsAny(k, "=\x00"):
		return fmt.Errorf("%w: name %q contains '=' or a NUL byte", ErrInvalidEnv, k)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: value of %s contains a NUL byte", ErrInvalidEnv, k)
	}
	return nil
}

// environ builds the child's environment: base, then the task's Env, then CAIRN_*; sorted.
func (s *shell) environ(a *Attempt) []string {
	m := make(map[string]string, len(s.baseEnv)+len(a.Spec.Shell.Env)+len(reservedEnv))
	for _, kv := range s.baseEnv {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for k, v := range a.Spec.Shell.Env {
		m[k] = v
	}
	m[EnvRunID] = a.RunID
	m[EnvTaskID] = a.TaskID
	m[EnvAttempt] = strconv.Itoa(a.Number)
	if a.IdempotencyKey != "" {
		m[EnvIdempotencyKey] = a.IdempotencyKey
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// resolveWorkdir returns dir with every symlink resolved, if that lies within an allowed root.
func (s *shell) resolveWorkdir(dir string) (string, error) {
	if len(s.roots) == 0 {
		return "", fmt.Errorf("%w: %q: no allowed workdir roots are configured, so tasks may not choose a workdir", ErrWorkdir, dir)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrWorkdir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrWorkdir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: %q is not a directory", ErrWorkdir, dir)
	}
	for _, root := range s.roots {
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue // a root that does not exist holds nothing
		}
		if within(realRoot, real) {
			return real, nil
		}
	}
	return "", fmt.Errorf("%w: %q resolves to %q, outside the allowed roots %v", ErrWorkdir, dir, real, s.roots)
}

// within reports whether path is root or below it (both clean, absolute, symlink-free).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// lookPath finds a bare program name on the child's PATH (not the worker's). Names with a '/'
// are used as they are (relative ones from the workdir). Relative PATH entries are ignored.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

func (s *shell) run(ctx context.Context, a *Attempt, res *Result) {
	spec := a.Spec.Shell
	var dir string
	if spec.Workdir != "" {
		var err error
		if dir, err = s.resolveWorkdir(spec.Workdir); err != nil {
			res.fail(FailureInternal, err)
			return
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp(s.scratchDir, "cairn-attempt-*"); err != nil {
			res.fail(FailureInternal, fmt.Errorf("create scratch workdir: %w", err))
			return
		}
		defer os.RemoveAll(dir) // best effort, after the group is gone (defers run last-in first-out)
		if s.cred != nil {
			if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				res.fail(FailureInternal, fmt.Errorf("hand the scratch workdir to the task user: %w", err))
				return
			}
		}
	}
	env := s.environ(a)
	argv := spec.Argv
	if len(argv) == 0 {
		argv = []string{ScriptShell, "-c", spec.Script}
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		res.fail(FailureInternal, err)
		return
	}

	// One pipe for stdout and stderr, handed to the child as a file: no copying goroutine in
	// os/exec, so cmd.Wait returns when the leader exits even if a grandchild keeps the pipe
	// open. Our reader stops once the group is gone (or at a deadline).
	pr, pw, err := os.Pipe()
	if err != nil {
		res.fail(FailureInternal, fmt.Errorf("create output pipe: %w", err))
		return
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         env,
		Dir:         dir,
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: s.cred},
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		res.fail(FailureInternal, fmt.Errorf("start %s: %w", argv[0], err))
		return
	}
	// The child called setpgid before exec, and Start returned only after exec: the group
	// exists and every descendant starts in it.
	pgid := cmd.Process.Pid

	out := newTailBuffer(s.outputCap)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = out.ReadFrom(pr) // ends at EOF, at the drain deadline or when pr is closed
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	cleaned := false
	defer func() {
		if !cleaned { // a panic below: never leave the group or the reader behind
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			pr.Close()
		}
	}()

	var waitErr error
	stopped := false
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		select {
		case waitErr = <-waited: // the leader finished just in time: its outcome stands
		default:
			stopped = true
		}
	}
	// Whether the leader exited or is being stopped, every process left in its group goes:
	// background children must not outlive their attempt.
	groupErr := s.killGroup(pgid)
	if stopped {
		waitErr = <-waited
	}
	_ = pr.SetReadDeadline(time.Now().Add(outputDrainTimeout))
	<-readDone
	pr.Close()
	cleaned = true

	res.Output, res.OutputTruncated = out.Bytes(), out.Truncated()
	if ps := cmd.ProcessState; ps != nil {
		res.ExitCode = ps.ExitCode()
	}
	switch {
	case stopped:
		res.failContext(ctx, a.Timeout)
	case waitErr != nil:
		res.fail(FailureExitCode, exitError(waitErr))
	}
	if groupErr != nil {
		if res.Err == nil {
			res.fail(FailureInternal, groupErr)
		} else {
			res.Err = errors.Join(res.Err, groupErr)
		}
	}
}

func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("%w: killed by signal %d (%s)", ErrExitCode, ws.Signal(), ws.Signal())
		}
		return fmt.Errorf("%w: exit code %d", ErrExitCode, ee.ExitCode())
	}
	return fmt.Errorf("%w: %w", ErrExitCode, err)
}

// killGroup makes sure no live process is left in the process group pgid: SIGTERM, up to
// killGrace for the group to exit, then SIGKILL. It returns quickly when the group is already
// empty. It returns an error only if processes survive SIGKILL for killWait.
func (s *shell) killGroup(pgid int) error {
	if !groupAlive(pgid) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	// A stopped process cannot act on SIGTERM until continued.
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
	if waitGroupGone(pgid, s.killGrace) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if waitGroupGone(pgid, killWait) {
		return nil
	}
	return fmt.Errorf("process group %d still has live processes %s after SIGKILL", pgid, killWait)
}

func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for {
		if !groupAlive(pgid) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, 50*time.Millisecond)
	}
}
