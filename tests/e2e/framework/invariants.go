package framework

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// invariant is one check: a query returning one text row per violation.
type invariant struct {
	name  string
	query string
}

// invariants are the recording invariants of docs/invariants.md, read from PostgreSQL. Each query returns
// a description of every violation; an empty result means the invariant holds.
var invariants = []invariant{
	{
		"no run is left non-terminal",
		`SELECT format('run %s (%s) is %s', id, workflow, state) FROM runs WHERE state IN ('PENDING', 'RUNNING')`,
	},
	{
		"every task of a finished run is terminal",
		`SELECT format('run %s is %s but task %s is %s', r.id, r.state, t.task_id, t.state)
		 FROM runs r JOIN task_runs t ON t.run_id = r.id
		 WHERE r.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
		   AND t.state IN ('PENDING', 'QUEUED', 'ASSIGNED', 'RUNNING', 'RETRY_WAIT')`,
	},
	{
		"no attempt of a finished run is still active",
		`SELECT format('run %s is %s but attempt %s#%s (worker %s) is %s', r.id, r.state, a.task_id, a.number, a.worker_id, a.state)
		 FROM runs r JOIN attempts a ON a.run_id = r.id
		 WHERE r.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND a.state IN ('ASSIGNED', 'RUNNING')`,
	},
	{
		"no task has more than one SUCCEEDED attempt per opening (exactly-once recording; a run retry or replay re-opening a succeeded task allows one more)",
		`SELECT format('task %s of run %s has %s SUCCEEDED attempts (numbers %s) but was re-opened after success %s time(s)',
		        a.task_id, a.run_id, count(*), string_agg(a.number::text, ','),
		        (SELECT count(*) FROM events e WHERE e.run_id = a.run_id AND e.task_id = a.task_id
		          AND e.kind = 'task_state' AND e.from_state = 'SUCCEEDED' AND e.to_state = 'PENDING'))
		 FROM attempts a WHERE a.state = 'SUCCEEDED' GROUP BY a.run_id, a.task_id
		 HAVING count(*) > 1 + (SELECT count(*) FROM events e WHERE e.run_id = a.run_id AND e.task_id = a.task_id
		          AND e.kind = 'task_state' AND e.from_state = 'SUCCEEDED' AND e.to_state = 'PENDING')`,
	},
	{
		"a SUCCEEDED task's current attempt is its SUCCEEDED attempt",
		`SELECT format('task %s of run %s is SUCCEEDED at attempt %s token %s, but that attempt is %s',
		               t.task_id, t.run_id, t.attempt, t.fencing_token, coalesce(a.state, 'missing'))
		 FROM task_runs t LEFT JOIN attempts a ON a.fencing_token = t.fencing_token
		 WHERE t.state = 'SUCCEEDED' AND (a.state IS DISTINCT FROM 'SUCCEEDED' OR a.number <> t.attempt)`,
	},
	{
		"an accepted result (SUCCEEDED/FAILED) belongs to the current attempt or one properly superseded by a later attempt",
		`SELECT format('attempt %s#%s of run %s is %s with token %s, but the task''s current token is %s and no later attempt supersedes it',
		               a.task_id, a.number, a.run_id, a.state, a.fencing_token, t.fencing_token)
		 FROM attempts a JOIN task_runs t ON t.run_id = a.run_id AND t.task_id = a.task_id
		 WHERE a.state IN ('SUCCEEDED', 'FAILED') AND a.fencing_token <> t.fencing_token
		   AND NOT EXISTS (SELECT 1 FROM attempts b
		                   WHERE b.run_id = a.run_id AND b.task_id = a.task_id
		                     AND b.number > a.number AND b.fencing_token > a.fencing_token
		                     AND b.assigned_at >= a.finished_at)`,
	},
	{
		"fencing tokens grow with the attempt number",
		`SELECT format('task %s of run %s: attempt %s has token %s but later attempt %s has token %s',
		               a.task_id, a.run_id, a.number, a.fencing_token, b.number, b.fencing_token)
		 FROM attempts a JOIN attempts b ON b.run_id = a.run_id AND b.task_id = a.task_id AND b.number > a.number
		 WHERE b.fencing_token <= a.fencing_token`,
	},
	{
		"the task's current token is its latest attempt's",
		`SELECT format('task %s of run %s is at attempt %s token %s, but its latest attempt is #%s token %s',
		               t.task_id, t.run_id, t.attempt, t.fencing_token, a.number, a.fencing_token)
		 FROM task_runs t JOIN LATERAL (SELECT number, fencing_token FROM attempts x
		      WHERE x.run_id = t.run_id AND x.task_id = t.task_id ORDER BY number DESC LIMIT 1) a ON true
		 WHERE t.attempt <> a.number OR t.fencing_token <> a.fencing_token`,
	},
	{
		"every STALE attempt has its stale result recorded",
		`SELECT format('attempt %s#%s of run %s is STALE without stale_result_at/stale_outcome', task_id, number, run_id)
		 FROM attempts WHERE state = 'STALE' AND (stale_result_at IS NULL OR stale_outcome = '')`,
	},
	{
		"every stale result is recorded with its attempt_stale event",
		`SELECT format('attempt %s#%s of run %s has a stale result (%s) but no attempt_stale event', a.task_id, a.number, a.run_id, a.stale_outcome)
		 FROM attempts a WHERE a.stale_result_at IS NOT NULL
		   AND (a.stale_outcome = '' OR NOT EXISTS (SELECT 1 FROM events e WHERE e.run_id = a.run_id AND e.task_id = a.task_id
		                                             AND e.kind = 'attempt_stale' AND e.attempt = a.number))`,
	},
}

// CheckInvariants checks the recording invariants of docs/invariants.md against PostgreSQL and reports
// every violation (t.Errorf per violation, so all are seen). Call it after every run the
// test started has finished.
func (c *Cluster) CheckInvariants(t testing.TB) {
	t.Helper()
	for _, v := range Violations(c, t) {
		t.Errorf("invariant violated: %s", v)
	}
}

// Violations returns the invariant violations found in PostgreSQL, each prefixed with the
// invariant's name.
func Violations(c *Cluster, t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	for _, inv := range invariants {
		rows, err := c.Pool.Query(ctx, inv.query)
		if err != nil {
			t.Fatalf("framework: invariant %q: query: %v", inv.name, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				t.Fatalf("framework: invariant %q: scan: %v", inv.name, err)
			}
			out = append(out, fmt.Sprintf("%s: %s", inv.name, s))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("framework: invariant %q: %v", inv.name, err)
		}
	}
	return out
}
