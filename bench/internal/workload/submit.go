package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cairn-io/cairn/bench/internal/cluster"
	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// submit starts runs of a one-task workflow as fast as `clients` concurrent callers can, for
// SubmitDuration through REST and then through gRPC, and reports runs/s and call latency. The
// runs execute on one worker meanwhile; all must succeed afterwards.
func (r *runner) submit(ctx context.Context) error {
	r.rep.Workload("submit", "clients", r.cfg.Clients, "duration", r.cfg.SubmitDuration, "workflow", "1 noop task",
		"workers", 1, "slots", r.cfg.Slots, "via", "gateway (REST, then gRPC)")
	c, err := r.env.NewCluster(ctx, "submit", cluster.Spec{Schedulers: 1, Workers: 1, Slots: r.cfg.Slots,
		SessionTTL: r.cfg.SessionTTL, LeaseTTL: r.cfg.LeaseTTL, AdoptGrace: r.cfg.AdoptGrace})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := apply(ctx, c, wideYAML("submit", 1)); err != nil {
		return err
	}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: r.cfg.Clients}}
	url := "http://" + c.Gateway.HTTPAddr + "/v1/workflows/submit/runs"
	rest := func(ctx context.Context) (string, error) {
		body, _ := json.Marshal(map[string]string{"idempotency_key": newKey()})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+cluster.AdminToken)
		resp, err := httpc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		var out struct {
			Run struct {
				RunID  string `json:"runId"`
				RunID2 string `json:"run_id"`
			} `json:"run"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return "", fmt.Errorf("decode response: %w", err)
		}
		if id := out.Run.RunID + out.Run.RunID2; id != "" {
			return id, nil
		}
		return "", fmt.Errorf("no run id in %s", b)
	}
	rc := cairnv1.NewRunServiceClient(c.Conn)
	grpcStart := func(ctx context.Context) (string, error) {
		resp, err := rc.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "submit", IdempotencyKey: newKey()})
		if err != nil {
			return "", err
		}
		return resp.GetRun().GetRunId(), nil
	}
	var all []string
	failed := 0
	var firstErr error
	for _, proto := range []struct {
		name string
		f    func(context.Context) (string, error)
	}{{"rest", rest}, {"grpc", grpcStart}} {
		h := r.hammer(ctx, proto.f)
		ids, lats, nfail, ferr, took := h.ids, h.lats, h.failed, h.firstErr, h.took
		all = append(all, ids...)
		failed += nfail
		if firstErr == nil {
			firstErr = ferr
		}
		slices.Sort(lats)
		name := "submit." + proto.name
		if len(lats) == 0 {
			r.rep.Unavailable(name, fmt.Sprintf("no call succeeded: %v", ferr))
			r.rep.Unavailable(name+".p50", "")
			r.rep.Unavailable(name+".p99", "")
			continue
		}
		r.rep.AddNote(name, float64(len(ids))/took.Seconds(), "runs/s", fmt.Sprintf("%d runs in %v, %d failed", len(ids), took.Round(time.Millisecond), nfail))
		r.rep.Add(name+".p50", ms(percentile(lats, 50)), "ms")
		r.rep.Add(name+".p99", ms(percentile(lats, 99)), "ms")
	}
	out, err := waitRuns(ctx, c, all, r.cfg.Timeout)
	if err != nil {
		return err
	}
	why := out.String()
	if firstErr != nil {
		why += fmt.Sprintf("; %d call(s) failed, first: %v", failed, firstErr)
	}
	r.errorsFigure("submit.errors", failed+len(all)-out.count("SUCCEEDED"), why)
	return nil
}

// hammered is what hammer saw.
type hammered struct {
	ids      []string
	lats     []time.Duration
	failed   int
	firstErr error
	took     time.Duration
}

// hammer calls start from Clients goroutines until SubmitDuration has passed.
func (r *runner) hammer(ctx context.Context, start func(context.Context) (string, error)) hammered {
	var ids []string
	var lats []time.Duration
	var failed int
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	began := time.Now()
	end := began.Add(r.cfg.SubmitDuration)
	for range r.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				t := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				id, err := start(cctx)
				cancel()
				d := time.Since(t)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ids = append(ids, id)
					lats = append(lats, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return hammered{ids, lats, failed, firstErr, time.Since(began)}
}
