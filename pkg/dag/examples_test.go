package dag

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func exampleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 examples, found %v", files)
	}
	return files
}

func TestExamplesAreValid(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			wf, err := ParseFile(f)
			if err != nil {
				t.Fatalf("example does not parse:\n%v", err)
			}
			for _, task := range wf.Tasks {
				if _, err := task.Render(nil); err != nil {
					t.Errorf("render %s with defaults: %v", task.ID, err)
				}
			}
		})
	}
}

// runLocal runs a workflow's shell and noop tasks in this process, driving them with Ready and
// Affected as the scheduler would, and returns each task's outcome.
func runLocal(t *testing.T, wf *Workflow, params map[string]string, extraEnv []string) []Outcome {
	t.Helper()
	g := wf.Graph
	outcome := make([]Outcome, g.Len())
	get := func(i int) Outcome { return outcome[i] }
	queue := g.Ready(get)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if outcome[d.Task] != OutcomePending {
			t.Fatalf("task %s decided twice", g.ID(d.Task))
		}
		switch d.Decision {
		case Skip:
			outcome[d.Task] = OutcomeSkipped
			continue // Ready/Affected already included the cascade
		case UpstreamFailed:
			outcome[d.Task] = OutcomeUpstreamFailed
			continue
		}
		task := wf.Tasks[d.Task]
		outcome[d.Task] = OutcomeSucceeded
		if task.Type == TaskShell {
			r, err := task.Render(params)
			if err != nil {
				t.Fatalf("render %s: %v", task.ID, err)
			}
			argv := r.Shell.Argv
			if argv == nil {
				argv = []string{"/bin/sh", "-c", r.Shell.Script}
			}
			ctx, cancel := context.WithTimeout(context.Background(), task.Timeout)
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, extraEnv...)
			for k, v := range r.Shell.Env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			cancel()
			t.Logf("%s: %s", task.ID, strings.TrimSpace(string(out)))
			if err != nil {
				t.Logf("%s failed: %v", task.ID, err)
				outcome[d.Task] = OutcomeFailed
			}
		}
		queue = append(queue, g.Affected(d.Task, get)...)
	}
	return outcome
}

// TestExampleETLRuns runs the ETL example's scripts for real with /bin/sh, in a temporary
// directory, and checks what they wrote.
func TestExampleETLRuns(t *testing.T) {
	wf, err := ParseFile("../../examples/etl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, tmp := t.TempDir(), t.TempDir()
	outcome := runLocal(t, wf, map[string]string{"day": "2026-03-04", "out_dir": out}, []string{"TMPDIR=" + tmp})
	want := map[string]Outcome{"announce": OutcomeSucceeded, "extract": OutcomeSucceeded, "transform": OutcomeSucceeded,
		"load": OutcomeSucceeded, "cleanup": OutcomeSucceeded, "report-failure": OutcomeSkipped}
	for i, task := range wf.Tasks {
		if outcome[i] != want[task.ID] {
			t.Errorf("task %s: outcome %v, want %v", task.ID, outcome[i], want[task.ID])
		}
	}
	summary, err := os.ReadFile(filepath.Join(out, "cairn-etl/2026-03-04/warehouse/orders_summary_2026-03-04.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// 12 orders, customer-(i%3); amounts 1250*i sum to 1250*78.
	wantSummary := "customer-0,4\ncustomer-1,4\ncustomer-2,4\ntotal,97500\n"
	if string(summary) != wantSummary {
		t.Errorf("summary:\n%s\nwant:\n%s", summary, wantSummary)
	}
	if _, err := os.Stat(filepath.Join(out, "cairn-etl/2026-03-04/orders.csv")); !os.IsNotExist(err) {
		t.Errorf("cleanup left orders.csv behind (stat: %v)", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("with out_dir set, nothing should be written to TMPDIR; found %d entries", len(entries))
	}

	// With out_dir empty the files go under $TMPDIR.
	tmp2 := t.TempDir()
	runLocal(t, wf, map[string]string{"day": "2026-03-05"}, []string{"TMPDIR=" + tmp2})
	if _, err := os.Stat(filepath.Join(tmp2, "cairn-etl/2026-03-05/warehouse/orders_summary_2026-03-05.csv")); err != nil {
		t.Errorf("with out_dir empty the summary should be under TMPDIR: %v", err)
	}
}

func TestExampleFanoutShape(t *testing.T) {
	wf, err := ParseFile("../../examples/fanout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := wf.Graph
	levels := g.Levels()
	if len(levels) != 4 || len(levels[1]) != 20 {
		t.Fatalf("levels: got %d levels (%v), want start, 20 shards, merge, publish", len(levels), levels)
	}
	if got := g.CriticalPathLength(); got != 4 {
		t.Errorf("critical path: got %d, want 4", got)
	}
	outcome := runLocal(t, wf, nil, []string{"TMPDIR=" + t.TempDir()})
	for i, o := range outcome {
		if o != OutcomeSucceeded {
			t.Errorf("task %s: %v", g.ID(i), o)
		}
	}
}

// TestExampleHealthcheckRequests renders the HTTP example against a loopback server and makes
// the requests its tasks describe.
func TestExampleHealthcheckRequests(t *testing.T) {
	wf, err := ParseFile("../../examples/healthcheck.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if wf.Schedule == nil || wf.Schedule.Location.String() != "Europe/Paris" {
		t.Fatalf("schedule: %+v", wf.Schedule)
	}
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.Method+" "+r.URL.Path+" "+string(b))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	params := map[string]string{"health_url": srv.URL + "/healthz", "hook_url": srv.URL + "/hooks/cairn", "env_name": `prod "eu"`}
	for _, id := range []string{"check", "notify-ok"} {
		i, _ := wf.Graph.Index(id)
		r, err := wf.Tasks[i].Render(params)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(r.HTTP.Method, r.HTTP.URL, strings.NewReader(r.HTTP.Body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range r.HTTP.Headers {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !slices.Contains(r.HTTP.ExpectStatus, resp.StatusCode) {
			t.Errorf("%s: status %d not in %v", id, resp.StatusCode, r.HTTP.ExpectStatus)
		}
	}
	want := []string{"GET /healthz ", `POST /hooks/cairn {"check":"api-healthcheck","env":"prod \"eu\"","status":"ok"}`}
	if !slices.Equal(bodies, want) {
		t.Errorf("requests:\n%q\nwant\n%q", bodies, want)
	}
}
