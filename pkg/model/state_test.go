package model_test

import (
	"errors"
	"testing"

	"github.com/cairn-io/cairn/pkg/model"
)

// The expected tables are written out independently of the package's own tables: every pair
// not listed here must be rejected.
var wantRun = map[[2]model.RunState]bool{
	{"PENDING", "RUNNING"}:   true,
	{"PENDING", "FAILED"}:    true,
	{"PENDING", "CANCELLED"}: true,
	{"RUNNING", "SUCCEEDED"}: true,
	{"RUNNING", "FAILED"}:    true,
	{"RUNNING", "CANCELLED"}: true,
	{"FAILED", "RUNNING"}:    true,
	{"CANCELLED", "RUNNING"}: true,
}

var wantTask = map[[2]model.TaskState]bool{
	{"PENDING", "QUEUED"}:          true,
	{"PENDING", "SKIPPED"}:         true,
	{"PENDING", "UPSTREAM_FAILED"}: true,
	{"PENDING", "CANCELLED"}:       true,

	{"QUEUED", "ASSIGNED"}:  true,
	{"QUEUED", "FAILED"}:    true,
	{"QUEUED", "CANCELLED"}: true,

	{"ASSIGNED", "RUNNING"}:       true,
	{"ASSIGNED", "QUEUED"}:        true,
	{"ASSIGNED", "SUCCEEDED"}:     true,
	{"ASSIGNED", "FAILED"}:        true,
	{"ASSIGNED", "RETRY_WAIT"}:    true,
	{"ASSIGNED", "DEAD_LETTERED"}: true,
	{"ASSIGNED", "CANCELLED"}:     true,

	{"RUNNING", "SUCCEEDED"}:     true,
	{"RUNNING", "FAILED"}:        true,
	{"RUNNING", "RETRY_WAIT"}:    true,
	{"RUNNING", "DEAD_LETTERED"}: true,
	{"RUNNING", "CANCELLED"}:     true,
	{"RUNNING", "QUEUED"}:        true,

	{"RETRY_WAIT", "QUEUED"}:    true,
	{"RETRY_WAIT", "CANCELLED"}: true,

	{"FAILED", "PENDING"}:          true,
	{"FAILED", "QUEUED"}:           true,
	{"UPSTREAM_FAILED", "PENDING"}: true,
	{"UPSTREAM_FAILED", "QUEUED"}:  true,
	{"CANCELLED", "PENDING"}:       true,
	{"CANCELLED", "QUEUED"}:        true,
	{"DEAD_LETTERED", "PENDING"}:   true,
	{"DEAD_LETTERED", "QUEUED"}:    true,
	{"SKIPPED", "PENDING"}:         true,
	{"SUCCEEDED", "PENDING"}:       true,
}

var wantAttempt = func() map[[2]model.AttemptState]bool {
	m := map[[2]model.AttemptState]bool{{"ASSIGNED", "RUNNING"}: true}
	for _, to := range []model.AttemptState{"SUCCEEDED", "FAILED", "TIMED_OUT", "LOST", "CANCELLED", "STALE"} {
		m[[2]model.AttemptState{"ASSIGNED", to}] = true
		m[[2]model.AttemptState{"RUNNING", to}] = true
	}
	return m
}()

// checkTable walks the full cross product of states (plus an unknown one) against want.
func checkTable[S ~string](t *testing.T, kind string, states []S, want map[[2]S]bool, check func(from, to S) error, can func(from, to S) bool) {
	t.Helper()
	all := append(append([]S(nil), states...), S("BOGUS"), S(""))
	allowed := 0
	for _, from := range all {
		for _, to := range all {
			err := check(from, to)
			if can(from, to) != (err == nil) {
				t.Errorf("%s %s → %s: CanTransition and Check disagree", kind, from, to)
			}
			if want[[2]S{from, to}] {
				allowed++
				if err != nil {
					t.Errorf("%s %s → %s: want allowed, got %v", kind, from, to, err)
				}
				continue
			}
			var ite *model.InvalidTransitionError
			if !errors.As(err, &ite) {
				t.Errorf("%s %s → %s: want *InvalidTransitionError, got %v", kind, from, to, err)
				continue
			}
			if ite.Kind != kind || ite.From != string(from) || ite.To != string(to) {
				t.Errorf("%s %s → %s: error fields %+v", kind, from, to, ite)
			}
		}
	}
	if allowed != len(want) {
		t.Errorf("%s: %d allowed pairs checked, want table has %d (a want entry names an unknown state)", kind, allowed, len(want))
	}
}

func TestRunTransitions(t *testing.T) {
	checkTable(t, "run", model.RunStates, wantRun, model.CheckRunTransition, model.RunState.CanTransition)
}

func TestTaskTransitions(t *testing.T) {
	checkTable(t, "task", model.TaskStates, wantTask, model.CheckTaskTransition, model.TaskState.CanTransition)
}

func TestAttemptTransitions(t *testing.T) {
	checkTable(t, "attempt", model.AttemptStates, wantAttempt, model.CheckAttemptTransition, model.AttemptState.CanTransition)
}

func TestInvalidTransitionErrorMessage(t *testing.T) {
	err := model.CheckTaskTransition(model.TaskSucceeded, model.TaskQueued)
	if got, want := err.Error(), "invalid task transition SUCCEEDED → QUEUED"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}

func TestTerminal(t *testing.T) {
	runTerminal := map[model.RunState]bool{"SUCCEEDED": true, "FAILED": true, "CANCELLED": true}
	for _, s := range model.RunStates {
		if s.Terminal() != runTerminal[s] {
			t.Errorf("run %s: Terminal() = %v", s, s.Terminal())
		}
	}
	taskTerminal := map[model.TaskState]bool{"SUCCEEDED": true, "FAILED": true, "UPSTREAM_FAILED": true,
		"SKIPPED": true, "CANCELLED": true, "DEAD_LETTERED": true}
	for _, s := range model.TaskStates {
		if s.Terminal() != taskTerminal[s] {
			t.Errorf("task %s: Terminal() = %v", s, s.Terminal())
		}
		if s.Active() != (s == "ASSIGNED" || s == "RUNNING") {
			t.Errorf("task %s: Active() = %v", s, s.Active())
		}
	}
	for _, s := range model.AttemptStates {
		if s.Terminal() == (s == "ASSIGNED" || s == "RUNNING") {
			t.Errorf("attempt %s: Terminal() = %v", s, s.Terminal())
		}
	}
	if model.AttemptState("BOGUS").Terminal() {
		t.Error("unknown attempt state reported terminal")
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, s := range model.RunStates {
		if got, err := model.ParseRunState(s.String()); err != nil || got != s {
			t.Errorf("ParseRunState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range model.TaskStates {
		if got, err := model.ParseTaskState(s.String()); err != nil || got != s {
			t.Errorf("ParseTaskState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range model.AttemptStates {
		if got, err := model.ParseAttemptState(s.String()); err != nil || got != s {
			t.Errorf("ParseAttemptState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range model.Triggers {
		if got, err := model.ParseTrigger(s.String()); err != nil || got != s {
			t.Errorf("ParseTrigger(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range model.FailureKinds {
		if got, err := model.ParseFailureKind(s.String()); err != nil || got != s {
			t.Errorf("ParseFailureKind(%q) = %q, %v", s, got, err)
		}
	}
}

func TestParseRejectsUnknown(t *testing.T) {
	for name, parse := range map[string]func(string) error{
		"run state":     func(s string) error { _, err := model.ParseRunState(s); return err },
		"task state":    func(s string) error { _, err := model.ParseTaskState(s); return err },
		"attempt state": func(s string) error { _, err := model.ParseAttemptState(s); return err },
		"trigger":       func(s string) error { _, err := model.ParseTrigger(s); return err },
		"failure kind":  func(s string) error { _, err := model.ParseFailureKind(s); return err },
	} {
		for _, bad := range []string{"running", "BOGUS", " PENDING"} {
			err := parse(bad)
			if err == nil {
				t.Errorf("%s: %q accepted", name, bad)
				continue
			}
			if want := "unknown " + name + ` "` + bad + `"`; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
				t.Errorf("%s: error %q does not start with %q", name, err, want)
			}
		}
	}
}

func TestHashYAML(t *testing.T) {
	a, b := model.HashYAML("name: x\n"), model.HashYAML("name: x \n")
	if a == b || len(a) != 64 {
		t.Fatalf("hashes %q %q", a, b)
	}
	if a != model.HashYAML("name: x\n") {
		t.Fatal("hash not deterministic")
	}
}
