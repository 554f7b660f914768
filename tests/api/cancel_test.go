package api

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// sleeper's shell writes its own PID and its child sleep's PID to a file, then waits: both
// processes must be gone once the run is cancelled. The file is renamed into place so it is
// never read half-written.
const sleeper = `
name: sleeper
params: {pidfile: ""}
tasks:
  - id: nap
    type: shell
    env: {PIDFILE: "{{ .params.pidfile }}"}
    command: 'sleep 300 & echo "$$ $!" > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"; wait'
  - {id: after, type: noop, depends_on: [nap]}
`

// alive reports whether pid exists (kill(pid, 0) is not ESRCH).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0): %v", pid, err)
	}
	return err == nil
}

func TestCancelStopsShellTask(t *testing.T) {
	c := newCluster(t)
	api := newREST(t, c)
	api.apply(sleeper)
	pidfile := filepath.Join(c.SharedDir(), "pids") // the task, maybe another user, writes it

	id := api.start("sleeper", map[string]string{"pidfile": pidfile}, "").GetRunId()
	var pids []int
	framework.Eventually(t, 30*time.Second, func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid <= 1 {
				t.Fatalf("pid file %q holds %q, want two PIDs", pidfile, b)
			}
			pids = append(pids, pid)
		}
		return true
	}, "task nap wrote its PIDs to %s", pidfile)
	if len(pids) != 2 {
		t.Fatalf("pid file holds %v, want the shell's and sleep's PIDs", pids)
	}
	for _, pid := range pids {
		if !alive(t, pid) {
			t.Fatalf("process %d of task nap is not running before the cancel", pid)
		}
	}
	// The worker reports Started once the process is spawned and the leader records it in its
	// next group commit, so the PID file can be seen a moment before the state reads RUNNING.
	api.waitRunState(id, 30*time.Second, func(r *cairnv1.Run) bool {
		return taskStates(r)["nap"] == cairnv1.TaskState_TASK_STATE_RUNNING
	}, "task nap RUNNING while its process runs")

	var cancelled cairnv1.CancelRunResponse
	api.post("/v1/runs/"+id+":cancel", map[string]string{"reason": "operator says stop"}).ok(t, &cancelled)
	if cancelled.GetRun().GetRunId() != id {
		t.Errorf("cancel answered run %s, want %s", cancelled.GetRun().GetRunId(), id)
	}
	run := api.waitRun(id, 30*time.Second)
	if run.GetState() != cairnv1.RunState_RUN_STATE_CANCELLED {
		t.Fatalf("run %s ended %s, want CANCELLED; tasks %v", id, run.GetState(), taskStates(run))
	}
	if !strings.Contains(run.GetReason(), "operator says stop") {
		t.Errorf("cancelled run's reason is %q, want it to carry %q", run.GetReason(), "operator says stop")
	}
	for task, st := range taskStates(run) {
		if st != cairnv1.TaskState_TASK_STATE_CANCELLED {
			t.Errorf("task %s is %s after the cancel, want CANCELLED", task, st)
		}
	}

	// The shell and its child are killed (the whole process group), not orphaned.
	for _, pid := range pids {
		framework.Eventually(t, 20*time.Second, func() bool { return !alive(t, pid) },
			"process %d of the cancelled task is gone (kill(pid, 0) → ESRCH)", pid)
	}
	as := api.attempts(id, "nap")
	if len(as) != 1 || as[0].GetState() != cairnv1.AttemptState_ATTEMPT_STATE_FAILED || as[0].GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_CANCELLED {
		t.Errorf("attempts of nap: %v, want one FAILED attempt of kind CANCELLED", as)
	}
	if n := len(api.attempts(id, "after")); n != 0 {
		t.Errorf("task after ran %d attempts in a cancelled run, want 0", n)
	}
	c.CheckInvariants(t)
}
