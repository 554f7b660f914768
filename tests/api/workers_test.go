package api

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// TestWorkersShowLoad: GET /v1/workers and `cairnctl workers` show the worker's load as the
// leader sees it — the attempt it runs, its capacity, that its stream is attached, when it
// was last heard from — and the load falls back to zero once the attempt ends.
func TestWorkersShowLoad(t *testing.T) {
	c := newCluster(t)
	api := newREST(t, c)
	api.apply(sleeper)
	pidfile := filepath.Join(t.TempDir(), "pids")
	id := api.start("sleeper", map[string]string{"pidfile": pidfile}, "").GetRunId()
	api.waitRunState(id, 30*time.Second, func(r *cairnv1.Run) bool {
		return taskStates(r)["nap"] == cairnv1.TaskState_TASK_STATE_RUNNING
	}, "task nap RUNNING")

	var list cairnv1.ListWorkersResponse
	api.get("/v1/workers").ok(t, &list)
	if len(list.GetWorkers()) != 1 || !list.GetLoadKnown() {
		t.Fatalf("workers %v, load_known %v; want the one worker with its load", list.GetWorkers(), list.GetLoadKnown())
	}
	w := list.GetWorkers()[0]
	if w.GetId() != "worker-0" || w.GetRunning() != 1 || w.GetCapacity() != 2 || !w.GetConnected() || w.GetDraining() || w.GetLastSeenAt() == nil {
		t.Errorf("worker = %v, want worker-0 connected, running 1 of 2, with a last-seen time", w)
	}
	if seen := w.GetLastSeenAt().AsTime(); seen.Before(w.GetStartedAt().AsTime()) || time.Since(seen) > time.Minute {
		t.Errorf("last_seen_at %v is not between the worker's start %v and now", seen, w.GetStartedAt().AsTime())
	}

	// Heartbeats alone (the task sends nothing else while it sleeps) move last_seen_at on.
	framework.Eventually(t, 20*time.Second, func() bool {
		var l cairnv1.ListWorkersResponse
		api.get("/v1/workers").ok(t, &l)
		return len(l.GetWorkers()) == 1 && l.GetWorkers()[0].GetLastSeenAt().AsTime().After(w.GetLastSeenAt().AsTime())
	}, "worker-0's last_seen_at moves past %v with its heartbeats", w.GetLastSeenAt().AsTime())

	res := cairnctl(t, c, "workers")
	if res.code != 0 {
		t.Fatalf("%v\nwant exit 0", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "STATE") || !strings.Contains(lines[1], "worker-0") ||
		!strings.Contains(lines[1], "connected") || !strings.Contains(lines[1], "1/2") {
		t.Errorf("%v\nwant a header and worker-0 connected, running 1/2", res)
	}

	api.post("/v1/runs/"+id+":cancel", map[string]string{"reason": "done looking"}).ok(t, &cairnv1.CancelRunResponse{})
	api.waitRun(id, 30*time.Second)
	framework.Eventually(t, 20*time.Second, func() bool {
		var l cairnv1.ListWorkersResponse
		api.get("/v1/workers").ok(t, &l)
		return len(l.GetWorkers()) == 1 && l.GetLoadKnown() && l.GetWorkers()[0].GetRunning() == 0
	}, "worker-0 shows 0 running once the cancelled attempt ended")
}
