package framework

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Eventually polls cond every 50ms until it returns true, failing t with the formatted
// message when timeout passes first. It is the only way tests wait.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("framework: not true within %v: %s", timeout, fmt.Sprintf(format, args...))
	}
}

// poll is Eventually without the failure; it reports whether cond became true.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpOK(url string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// terminalRun lists the final run states.
var terminalRun = map[string]bool{"SUCCEEDED": true, "FAILED": true, "CANCELLED": true}

// RunState reads a run's state from PostgreSQL ("" when unreadable).
func (c *Cluster) RunState(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var s string
	if err := c.Pool.QueryRow(ctx, `SELECT state FROM runs WHERE id = $1`, id).Scan(&s); err != nil {
		return ""
	}
	return s
}

// WaitRun polls PostgreSQL until run id is terminal and returns its state; on timeout it
// fails t with the state of every task.
func (c *Cluster) WaitRun(id string, timeout time.Duration) string {
	c.t.Helper()
	var state string
	if !poll(timeout, func() bool { state = c.RunState(id); return terminalRun[state] }) {
		c.t.Fatalf("framework: run %s not finished within %v (state %q); tasks:\n%s", id, timeout, state, c.describeRun(id))
	}
	return state
}

// Task is a task run row.
type Task struct {
	TaskID, State, WorkerID string
	Attempt                 int
	Token                   int64
}

// Tasks returns the task runs of a run, by task id.
func (c *Cluster) Tasks(runID string) map[string]Task {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.Pool.Query(ctx, `SELECT task_id, state, worker_id, attempt, fencing_token FROM task_runs WHERE run_id = $1`, runID)
	if err != nil {
		c.t.Fatalf("framework: read tasks of %s: %v", runID, err)
	}
	defer rows.Close()
	out := map[string]Task{}
	for rows.Next() {
		var tr Task
		if err := rows.Scan(&tr.TaskID, &tr.State, &tr.WorkerID, &tr.Attempt, &tr.Token); err != nil {
			c.t.Fatalf("framework: scan task: %v", err)
		}
		out[tr.TaskID] = tr
	}
	if err := rows.Err(); err != nil {
		c.t.Fatalf("framework: read tasks of %s: %v", runID, err)
	}
	return out
}

// Attempt is an attempts row.
type Attempt struct {
	RunID, TaskID         string
	Number                int
	Token                 int64
	WorkerID, State       string
	FailureKind, Error    string
	AssignedAt            time.Time
	StartedAt, FinishedAt *time.Time
	StaleResultAt         *time.Time
	StaleOutcome          string
}

// Epoch is the leader epoch that issued the attempt (the token's high 32 bits).
func (a Attempt) Epoch() int64 { return a.Token >> 32 }

func (a Attempt) String() string {
	s := fmt.Sprintf("%s#%d worker=%s state=%s epoch=%d", a.TaskID, a.Number, a.WorkerID, a.State, a.Epoch())
	if a.FailureKind != "" || a.Error != "" {
		s += fmt.Sprintf(" failure=%s error=%q", a.FailureKind, a.Error)
	}
	if a.StaleResultAt != nil {
		s += " stale_outcome=" + a.StaleOutcome
	}
	return s
}

// Attempts returns every attempt of a run (runID "" for all runs), by task and number.
func (c *Cluster) Attempts(runID string) []Attempt {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.Pool.Query(ctx, `
		SELECT run_id::text, task_id, number, fencing_token, worker_id, state, failure_kind, error,
		       assigned_at, started_at, finished_at, stale_result_at, stale_outcome
		FROM attempts WHERE $1 = '' OR run_id::text = $1
		ORDER BY run_id, task_id, number`, runID)
	if err != nil {
		c.t.Fatalf("framework: read attempts: %v", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.RunID, &a.TaskID, &a.Number, &a.Token, &a.WorkerID, &a.State, &a.FailureKind, &a.Error,
			&a.AssignedAt, &a.StartedAt, &a.FinishedAt, &a.StaleResultAt, &a.StaleOutcome); err != nil {
			c.t.Fatalf("framework: scan attempt: %v", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		c.t.Fatalf("framework: read attempts: %v", err)
	}
	return out
}

// TaskAttempts returns the attempts of one task of a run, by number.
func (c *Cluster) TaskAttempts(runID, taskID string) []Attempt {
	c.t.Helper()
	var out []Attempt
	for _, a := range c.Attempts(runID) {
		if a.TaskID == taskID {
			out = append(out, a)
		}
	}
	return out
}

// WaitAttemptRunning waits until the current attempt of a task has started on a worker and
// returns it.
func (c *Cluster) WaitAttemptRunning(runID, taskID string, timeout time.Duration) Attempt {
	c.t.Helper()
	var got Attempt
	Eventually(c.t, timeout, func() bool {
		as := c.TaskAttempts(runID, taskID)
		if len(as) == 0 {
			return false
		}
		a := as[len(as)-1]
		if a.State != "RUNNING" || a.StartedAt == nil {
			return false
		}
		got = a
		return true
	}, "task %s of run %s running", taskID, runID)
	return got
}

func (c *Cluster) describeRun(id string) string {
	var b strings.Builder
	for _, tr := range c.Tasks(id) {
		fmt.Fprintf(&b, "  task %s: %s attempt=%d worker=%s\n", tr.TaskID, tr.State, tr.Attempt, tr.WorkerID)
	}
	for _, a := range c.Attempts(id) {
		fmt.Fprintf(&b, "  attempt %s\n", a)
	}
	return b.String()
}
