package apiconv

import (
	"testing"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
)

// The enum conversions go through the protobuf value names; a state added to the model but
// not to the protos (or spelt differently) would silently become UNSPECIFIED. Every value of
// the model must map to a specified one.
func TestEveryDomainValueHasAnAPIValue(t *testing.T) {
	for _, s := range model.RunStates {
		if runState(s) == cairnv1.RunState_RUN_STATE_UNSPECIFIED {
			t.Errorf("run state %s has no API value", s)
		}
	}
	for _, s := range model.TaskStates {
		if taskState(s) == cairnv1.TaskState_TASK_STATE_UNSPECIFIED {
			t.Errorf("task state %s has no API value", s)
		}
	}
	for _, k := range model.FailureKinds {
		if k != model.FailureNone && FailureKind(k) == cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			t.Errorf("failure kind %q has no API value", k)
		}
	}
	for _, s := range model.AttemptStates {
		if st, _ := attemptState(s, model.FailureNone); st == cairnv1.AttemptState_ATTEMPT_STATE_UNSPECIFIED {
			t.Errorf("attempt state %s has no API value", s)
		}
	}
	for _, tt := range []dag.TaskType{dag.TaskShell, dag.TaskHTTP, dag.TaskNoop} {
		if taskType(tt) == cairnv1.TaskType_TASK_TYPE_UNSPECIFIED {
			t.Errorf("task type %s has no API value", tt)
		}
	}
	for _, r := range []dag.TriggerRule{dag.AllSuccess, dag.AllDone, dag.OneSuccess, dag.OneFailed, dag.NoneFailed} {
		if triggerRule(r) == cairnv1.TriggerRule_TRIGGER_RULE_UNSPECIFIED {
			t.Errorf("trigger rule %s has no API value", r)
		}
	}
}

// A run's params are never null in the API, even when none were stored.
func TestRunParamsNeverNil(t *testing.T) {
	if Run(model.Run{}).GetParams() == nil {
		t.Fatal("params of a run without params converted to nil")
	}
}
