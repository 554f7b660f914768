package localrun_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/localrun"
)

func parse(t *testing.T, src string) *dag.Workflow {
	t.Helper()
	wf, err := dag.Parse("test.yaml", []byte(src), dag.DefaultLimits())
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return wf
}

func realExecutor(t *testing.T) executor.Executor {
	t.Helper()
	ex, err := executor.New(executor.Config{KillGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// scripted is an executor whose outcome per task is decided by the test; it records the order
// attempts start in and the peak number running at once.
type scripted struct {
	mu      sync.Mutex
	started []string
	active  int
	peak    int
	fail    map[string]int // task → attempts that fail before one succeeds (-1: always)
	hold    chan struct{}  // if set, every attempt blocks until it is closed or ctx ends
}

func (s *scripted) Execute(ctx context.Context, a *executor.Attempt) *executor.Result {
	s.mu.Lock()
	s.started = append(s.started, a.TaskID)
	s.active++
	s.peak = max(s.peak, s.active)
	n := s.fail[a.TaskID]
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.active--; s.mu.Unlock() }()
	res := &executor.Result{Started: time.Now(), ExitCode: -1}
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
			res.Failure, res.Error, res.Finished = executor.FailureCancelled, "cancelled", time.Now()
			return res
		}
	}
	res.Finished = time.Now()
	if n == -1 || a.Number <= n {
		res.Failure, res.ExitCode, res.Error = executor.FailureExitCode, 1, "exit status 1"
		return res
	}
	res.Succeeded, res.ExitCode = true, 0
	return res
}

func states(rep *localrun.Report) map[string]localrun.State {
	m := map[string]localrun.State{}
	for _, t := range rep.Tasks {
		m[t.ID] = t.State
	}
	return m
}

const diamond = `
name: diamond
tasks:
  - {id: a, type: noop}
  - {id: c, type: noop, depends_on: [a]}
  - {id: b, type: noop, depends_on: [a]}
  - {id: d, type: noop, depends_on: [b, c]}
`

func TestSequentialRunsInTopologicalOrder(t *testing.T) {
	ex := &scripted{}
	rep, err := localrun.Run(context.Background(), parse(t, diamond), localrun.Config{Executor: ex})
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != localrun.Succeeded {
		t.Fatalf("run state = %s, want succeeded", rep.State)
	}
	if want := []string{"a", "c", "b", "d"}; !slices.Equal(ex.started, want) {
		t.Fatalf("start order = %v, want %v (topological, ties in declaration order)", ex.started, want)
	}
	if ex.peak != 1 {
		t.Fatalf("peak concurrency = %d, want 1 when sequential", ex.peak)
	}
	for _, tr := range rep.Tasks {
		if tr.State != localrun.Succeeded || tr.Attempts != 1 {
			t.Errorf("task %s: state %s attempts %d, want succeeded after 1", tr.ID, tr.State, tr.Attempts)
		}
	}
}

const failing = `
name: failing
defaults:
  backoff: {initial: 1ms, max: 2ms}
tasks:
  - {id: flaky, type: shell, command: ["true"], retries: 2}
  - {id: broken, type: shell, command: ["false"], retries: 2}
  - {id: after-broken, type: noop, depends_on: [broken]}
  - {id: after-after, type: noop, depends_on: [after-broken]}
  - {id: cleanup, type: noop, depends_on: [broken], trigger_rule: all_done}
  - {id: alert, type: noop, depends_on: [broken, flaky], trigger_rule: one_failed}
  - {id: happy-path, type: noop, depends_on: [flaky], trigger_rule: one_failed}
`

func TestRetriesTriggerRulesAndPropagation(t *testing.T) {
	ex := &scripted{fail: map[string]int{"flaky": 2, "broken": -1}}
	var events []localrun.Event
	rep, err := localrun.Run(context.Background(), parse(t, failing), localrun.Config{
		Executor: ex, Parallel: 4, OnEvent: func(e localrun.Event) { events = append(events, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]localrun.State{
		"flaky":        localrun.Succeeded, // two failures, then success on the third attempt
		"broken":       localrun.Failed,    // 1 + 2 retries, all failed
		"after-broken": localrun.UpstreamFailed,
		"after-after":  localrun.UpstreamFailed, // cascades
		"cleanup":      localrun.Succeeded,      // all_done runs anyway
		"alert":        localrun.Succeeded,      // one_failed fires
		"happy-path":   localrun.Skipped,        // one_failed with no failure upstream
	}
	if got := states(rep); !maps(got, want) {
		t.Fatalf("task states = %v\nwant %v", got, want)
	}
	if rep.State != localrun.Failed {
		t.Fatalf("run state = %s, want failed", rep.State)
	}
	for _, tr := range rep.Tasks {
		switch tr.ID {
		case "flaky", "broken":
			if tr.Attempts != 3 {
				t.Errorf("%s attempts = %d, want 3", tr.ID, tr.Attempts)
			}
		case "after-broken", "happy-path":
			if tr.Attempts != 0 {
				t.Errorf("%s ran %d times, want never", tr.ID, tr.Attempts)
			}
		}
	}
	var retrying int
	for _, e := range events {
		if e.Kind == localrun.EventRetrying {
			retrying++
			if e.Delay < 0 || e.Delay > 2*time.Millisecond {
				t.Errorf("retry delay %v outside [0, max 2ms]", e.Delay)
			}
		}
	}
	if retrying != 4 {
		t.Errorf("retrying events = %d, want 4", retrying)
	}
	if last := events[len(events)-1]; last.Done != last.Total {
		t.Errorf("last event says %d/%d done", last.Done, last.Total)
	}
}

func maps(a, b map[string]localrun.State) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParallelismIsBoundedByMaxActiveTasks(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: wide\nmax_active_tasks: 3\ntasks:\n")
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5", "t6", "t7"} {
		b.WriteString("  - {id: " + id + ", type: noop}\n")
	}
	for _, tc := range []struct {
		parallel, want int
	}{{8, 3}, {2, 2}} {
		ex := &scripted{hold: make(chan struct{})}
		done := make(chan *localrun.Report)
		go func() {
			rep, _ := localrun.Run(context.Background(), parse(t, b.String()), localrun.Config{Executor: ex, Parallel: tc.parallel})
			done <- rep
		}()
		// Wait until the runner has filled every slot it may, then release everything.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ex.mu.Lock()
			active := ex.active
			ex.mu.Unlock()
			if active == tc.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(ex.hold)
		rep := <-done
		if rep.State != localrun.Succeeded {
			t.Fatalf("parallel %d: run state %s", tc.parallel, rep.State)
		}
		if ex.peak != tc.want {
			t.Errorf("parallel %d: peak concurrency = %d, want %d", tc.parallel, ex.peak, tc.want)
		}
	}
}

func TestShellTimeoutFailsTheTask(t *testing.T) {
	wf := parse(t, `
name: slow
tasks:
  - id: sleepy
    type: shell
    command: ["sleep", "30"]
    timeout: 300ms
`)
	rep, err := localrun.Run(context.Background(), wf, localrun.Config{Executor: realExecutor(t)})
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tasks[0]
	if rep.State != localrun.Failed || tr.State != localrun.Failed {
		t.Fatalf("run %s, task %s; want both failed", rep.State, tr.State)
	}
	if !strings.Contains(tr.Error, "timed out") {
		t.Fatalf("error = %q, want a timeout", tr.Error)
	}
}

// TestEgressRefusalIsNotRetried: an HTTP task the egress policy refuses fails after one
// attempt whatever its retries, with the policy's message. The address is refused before any
// connection is attempted.
func TestEgressRefusalIsNotRetried(t *testing.T) {
	wf := parse(t, `
name: ssrf
tasks:
  - id: metadata
    type: http
    retries: 3
    backoff: {initial: 1ms, max: 1ms}
    http: {url: "http://169.254.169.254/latest/meta-data/"}
  - {id: after, type: noop, depends_on: [metadata]}
`)
	var events []localrun.EventKind
	rep, err := localrun.Run(context.Background(), wf, localrun.Config{Executor: realExecutor(t),
		OnEvent: func(e localrun.Event) { events = append(events, e.Kind) }})
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tasks[0]
	if rep.State != localrun.Failed || tr.State != localrun.Failed || tr.Attempts != 1 {
		t.Fatalf("run %s, task %s after %d attempt(s); want failed after 1", rep.State, tr.State, tr.Attempts)
	}
	if !strings.HasPrefix(tr.Error, "egress denied: 169.254.169.254 is link-local") {
		t.Errorf("error = %q", tr.Error)
	}
	if slices.Contains(events, localrun.EventRetrying) {
		t.Errorf("events %v include a retry", events)
	}
}

func TestParamsReachShellThroughEnvAndArgv(t *testing.T) {
	wf := parse(t, `
name: params
params: {who: world}
tasks:
  - id: greet
    type: shell
    env: {WHO: "{{ .params.who }}"}
    command: 'printf "hello %s from %s attempt %s" "$WHO" "$CAIRN_TASK_ID" "$CAIRN_ATTEMPT"'
  - id: echo
    type: shell
    command: ["echo", "{{ .params.who }}"]
`)
	rep, err := localrun.Run(context.Background(), wf, localrun.Config{Executor: realExecutor(t), Params: map[string]string{"who": "a; rm -rf /"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != localrun.Succeeded {
		t.Fatalf("run state %s: %+v", rep.State, rep.Tasks)
	}
	if got, want := string(rep.Tasks[0].Output), "hello a; rm -rf / from greet attempt 1"; got != want {
		t.Errorf("greet output = %q, want %q", got, want)
	}
	if got, want := string(rep.Tasks[1].Output), "a; rm -rf /\n"; got != want {
		t.Errorf("echo output = %q, want %q", got, want)
	}
}

func TestUnknownParamIsRejectedBeforeRunning(t *testing.T) {
	ex := &scripted{}
	_, err := localrun.Run(context.Background(), parse(t, diamond), localrun.Config{Executor: ex, Params: map[string]string{"nope": "1"}})
	if !errors.Is(err, dag.ErrParams) {
		t.Fatalf("err = %v, want dag.ErrParams", err)
	}
	if len(ex.started) != 0 {
		t.Fatalf("tasks ran despite the bad param: %v", ex.started)
	}
}

func TestCancelStopsRunningAndMarksTheRest(t *testing.T) {
	ex := &scripted{hold: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan *localrun.Report)
	go func() {
		rep, _ := localrun.Run(ctx, parse(t, diamond), localrun.Config{Executor: ex})
		done <- rep
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ex.mu.Lock()
		n := len(ex.started)
		ex.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
	}
	cancel(errors.New("interrupted"))
	rep := <-done
	if rep.State != localrun.Cancelled {
		t.Fatalf("run state = %s, want cancelled", rep.State)
	}
	for _, tr := range rep.Tasks {
		if tr.State != localrun.Cancelled {
			t.Errorf("task %s = %s, want cancelled", tr.ID, tr.State)
		}
	}
	if len(ex.started) != 1 {
		t.Errorf("started %v after cancel, want only a", ex.started)
	}
}
