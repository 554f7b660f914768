package workload

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-io/cairn/bench/internal/cluster"
	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// wideYAML is n independent noop tasks.
func wideYAML(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  - {id: t%05d, type: noop}\n", i)
	}
	return b.String()
}

// chainYAML is n noop tasks, each depending on the one before.
func chainYAML(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n  - {id: t%05d, type: noop}\n", name, 0)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: t%05d, type: noop, depends_on: [t%05d]}\n", i, i-1)
	}
	return b.String()
}

// diamondYAML is n ≥ 2 noop tasks: a head, n-2 tasks fanning out of it, a tail joining them.
func diamondYAML(name string, n int) string {
	if n < 3 {
		return chainYAML(name, n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n  - {id: head, type: noop}\n", name)
	var mids []string
	for i := 1; i < n-1; i++ {
		id := fmt.Sprintf("m%05d", i)
		mids = append(mids, id)
		fmt.Fprintf(&b, "  - {id: %s, type: noop, depends_on: [head]}\n", id)
	}
	fmt.Fprintf(&b, "  - {id: tail, type: noop, depends_on: [%s]}\n", strings.Join(mids, ", "))
	return b.String()
}

// retryable reports errors worth another try while leadership settles.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// apply stores a workflow through the gateway, retrying while no leader answers.
func apply(ctx context.Context, c *cluster.Cluster, yaml string) error {
	cl := cairnv1.NewWorkflowServiceClient(c.Conn)
	var err error
	for range 50 {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err = cl.ApplyWorkflow(cctx, &cairnv1.ApplyWorkflowRequest{Yaml: yaml})
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // retry pacing
	}
	if err != nil {
		return fmt.Errorf("apply workflow: %w", err)
	}
	return nil
}

var keySeq atomic.Int64

// newKey returns a fresh idempotency key.
func newKey() string { return fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), keySeq.Add(1)) }

// startRun starts one run through the gateway's gRPC API, retrying UNAVAILABLE with the same
// idempotency key (so a retry cannot start a second run).
func startRun(ctx context.Context, c *cluster.Cluster, workflow string) (string, error) {
	cl := cairnv1.NewRunServiceClient(c.Conn)
	key := newKey()
	var err error
	for range 50 {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var resp *cairnv1.StartRunResponse
		resp, err = cl.StartRun(cctx, &cairnv1.StartRunRequest{Workflow: workflow, IdempotencyKey: key})
		cancel()
		if err == nil {
			if id := resp.GetRun().GetRunId(); id != "" {
				return id, nil
			}
			return "", fmt.Errorf("start run of %s: empty run id", workflow)
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // retry pacing
	}
	return "", fmt.Errorf("start run of %s: %w", workflow, err)
}

// startRuns starts n runs from `clients` concurrent callers; failures are counted, not fatal.
func startRuns(ctx context.Context, c *cluster.Cluster, workflow string, n, clients int) (ids []string, failed int, firstErr error) {
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(clients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				id, err := startRun(ctx, c, workflow)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ids, failed, firstErr
}

// outcome counts the final states of runs.
type outcome struct {
	states  map[string]int
	pending int // not terminal when the wait ended
}

// count returns how many runs ended in state.
func (o outcome) count(state string) int { return o.states[state] }

func (o outcome) String() string {
	var parts []string
	for s, n := range o.states {
		parts = append(parts, fmt.Sprintf("%s=%d", s, n))
	}
	sort.Strings(parts)
	if o.pending > 0 {
		parts = append(parts, fmt.Sprintf("unfinished=%d", o.pending))
	}
	return strings.Join(parts, " ")
}

// waitRuns polls PostgreSQL until every run is terminal or timeout passes.
func waitRuns(ctx context.Context, c *cluster.Cluster, ids []string, timeout time.Duration) (outcome, error) {
	var out outcome
	err := cluster.Poll(ctx, timeout, func() (bool, error) {
		rows, err := c.Pool.Query(ctx, `SELECT state, count(*) FROM runs WHERE id = ANY($1::text[]::uuid[]) GROUP BY state`, ids)
		if err != nil {
			return false, fmt.Errorf("read run states: %w", err)
		}
		defer rows.Close()
		out = outcome{states: map[string]int{}}
		seen := 0
		for rows.Next() {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				return false, fmt.Errorf("read run states: %w", err)
			}
			seen += n
			switch s {
			case "SUCCEEDED", "FAILED", "CANCELLED":
				out.states[s] = n
			default:
				out.pending += n
			}
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("read run states: %w", err)
		}
		out.pending += len(ids) - seen
		return out.pending == 0, nil
	})
	if errors.Is(err, cluster.ErrTimeout) {
		return out, nil // reported as unfinished runs
	}
	return out, err
}

// span is the attempts' timing over a set of runs.
type span struct {
	firstAssigned, lastFinished time.Time
	attempts, succeeded         int
}

func (s span) seconds() float64 { return s.lastFinished.Sub(s.firstAssigned).Seconds() }

// attemptSpan reads, over runs, the first dispatch and the last completion.
func attemptSpan(ctx context.Context, c *cluster.Cluster, ids []string) (span, error) {
	var s span
	var first, last *time.Time
	err := c.Pool.QueryRow(ctx, `SELECT min(assigned_at), max(finished_at), count(*), count(*) FILTER (WHERE state = 'SUCCEEDED')
		FROM attempts WHERE run_id = ANY($1::text[]::uuid[])`, ids).Scan(&first, &last, &s.attempts, &s.succeeded)
	if err != nil {
		return s, fmt.Errorf("read attempt span: %w", err)
	}
	if first == nil || last == nil {
		return s, errors.New("read attempt span: no finished attempt")
	}
	s.firstAssigned, s.lastFinished = *first, *last
	return s, nil
}

// percentile returns the p-th percentile (0..100) of sorted values (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

const mib = 1 << 20
