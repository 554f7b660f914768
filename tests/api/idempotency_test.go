package api

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

const once = `
name: once
tasks:
  - {id: only, type: shell, command: "echo once"}
`

// TestIdempotentStartConcurrent sends one start 50 times at once with the same
// idempotency key: every call succeeds and names the same run, one of them created it, and
// PostgreSQL holds one run.
func TestIdempotentStartConcurrent(t *testing.T) {
	const calls = 50
	c := newCluster(t)
	api := newREST(t, c)
	api.apply(once)
	const key = "deploy-2026-01-01"

	type answer struct {
		status int
		body   string
		resp   *cairnv1.StartRunResponse
	}
	answers := make([]answer, calls)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: transport(c, calls)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			api := &rest{t: t, base: api.base, hc: hc, token: api.token}
			r := api.post("/v1/workflows/once/runs", map[string]any{"idempotency_key": key})
			a := answer{status: r.Status, body: string(r.Body)}
			if r.Status == http.StatusOK {
				a.resp = &cairnv1.StartRunResponse{}
				if err := protojson.Unmarshal(r.Body, a.resp); err != nil {
					a.status, a.body = -1, "undecodable: "+err.Error()
				}
			}
			answers[i] = a
		})
	}
	close(start)
	wg.Wait()

	ids := map[string]int{}
	created := 0
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("call %d: %d %s, want 200", i, a.status, a.body)
			continue
		}
		ids[a.resp.GetRun().GetRunId()]++
		if !a.resp.GetExisting() {
			created++
		}
		if a.resp.GetRun().GetIdempotencyKey() != key {
			t.Errorf("call %d: run has idempotency_key %q, want %q", i, a.resp.GetRun().GetIdempotencyKey(), key)
		}
	}
	if len(ids) != 1 {
		t.Errorf("%d calls with one idempotency key named %d runs: %v, want 1", calls, len(ids), ids)
	}
	if created != 1 {
		t.Errorf("%d answers say they created the run (existing=false), want exactly 1", created)
	}
	if n := count(t, c, `SELECT count(*) FROM runs WHERE workflow = 'once' AND idempotency_key = $1`, key); n != 1 {
		t.Errorf("PostgreSQL holds %d runs with idempotency key %q, want 1", n, key)
	}
	if n := count(t, c, `SELECT count(*) FROM runs`); n != 1 {
		t.Errorf("PostgreSQL holds %d runs, want 1", n)
	}
	for id := range ids {
		if run := api.waitRun(id, 30*time.Second); run.GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
			t.Errorf("run %s ended %s, want SUCCEEDED", id, run.GetState())
		}
		if n := len(api.attempts(id, "only")); n != 1 {
			t.Errorf("task only of run %s has %d attempts, want 1", id, n)
		}
	}
	// A later call with the key still answers the same run, without creating one.
	late := api.start("once", nil, key)
	if ids[late.GetRunId()] == 0 {
		t.Errorf("a later start with key %q answered run %s, want one of %v", key, late.GetRunId(), ids)
	}
	c.CheckInvariants(t)
}
