package schedapi

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func dur(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

func runState(s model.RunState) cairnv1.RunState {
	return cairnv1.RunState(cairnv1.RunState_value["RUN_STATE_"+string(s)])
}

func taskState(s model.TaskState) cairnv1.TaskState {
	return cairnv1.TaskState(cairnv1.TaskState_value["TASK_STATE_"+string(s)])
}

func taskType(t dag.TaskType) cairnv1.TaskType {
	return cairnv1.TaskType(cairnv1.TaskType_value["TASK_TYPE_"+strings.ToUpper(string(t))])
}

func triggerRule(r dag.TriggerRule) cairnv1.TriggerRule {
	return cairnv1.TriggerRule(cairnv1.TriggerRule_value["TRIGGER_RULE_"+strings.ToUpper(string(r))])
}

func trigger(t model.Trigger) cairnv1.RunTrigger {
	switch t {
	case model.TriggerSchedule:
		return cairnv1.RunTrigger_RUN_TRIGGER_SCHEDULE
	case model.TriggerManual, model.TriggerRetry:
		return cairnv1.RunTrigger_RUN_TRIGGER_API
	}
	return cairnv1.RunTrigger_RUN_TRIGGER_UNSPECIFIED
}

// runProto converts a run with its tasks; wf (optional) supplies task types and attempt limits.
func runProto(d store.RunDetail, wf *dag.Workflow) *cairnv1.Run {
	r := d.Run
	out := &cairnv1.Run{
		RunId:           r.ID.String(),
		Workflow:        r.Workflow,
		WorkflowVersion: int64(r.Version),
		State:           runState(r.State),
		Params:          r.Params,
		IdempotencyKey:  r.IdempotencyKey,
		Trigger:         trigger(r.Trigger),
		CreatedAt:       ts(r.CreatedAt),
		StartedAt:       ts(r.StartedAt),
		FinishedAt:      ts(r.FinishedAt),
		Reason:          r.Error,
	}
	for _, t := range d.Tasks {
		pt := &cairnv1.TaskRun{
			TaskId:        t.TaskID,
			State:         taskState(t.State),
			Attempt:       int32(t.Attempt),
			WorkerId:      t.WorkerID,
			StartedAt:     ts(t.StartedAt),
			FinishedAt:    ts(t.FinishedAt),
			NextAttemptAt: ts(t.NextAttemptAt),
			LastError:     t.LastError,
		}
		if wf != nil {
			if i, ok := wf.Graph.Index(t.TaskID); ok {
				pt.Type = taskType(wf.Tasks[i].Type)
				pt.MaxAttempts = int32(1 + wf.Tasks[i].Retries)
			}
		}
		out.Tasks = append(out.Tasks, pt)
	}
	return out
}

// workflowProto converts a stored version and its parsed DAG.
func workflowProto(v model.WorkflowVersion, wf *dag.Workflow) *cairnv1.Workflow {
	out := &cairnv1.Workflow{
		Name:           v.Workflow,
		Version:        int64(v.Version),
		ContentHash:    v.Hash,
		Description:    wf.Description,
		Timezone:       wf.Timezone,
		MaxActiveTasks: int32(wf.MaxActiveTasks),
		Yaml:           v.YAML,
		CreatedAt:      ts(v.CreatedAt),
		Params:         map[string]string{},
	}
	if wf.Schedule != nil {
		out.Schedule = wf.Schedule.Expr
	}
	for _, p := range wf.Params {
		out.Params[p.Name] = p.Default
	}
	for _, t := range wf.Tasks {
		out.Tasks = append(out.Tasks, &cairnv1.Task{
			Id:          t.ID,
			Type:        taskType(t.Type),
			DependsOn:   t.DependsOn,
			TriggerRule: triggerRule(t.TriggerRule),
			Pool:        t.Pool,
			Retries:     int32(t.Retries),
			Timeout:     dur(t.Timeout),
			Backoff: &cairnv1.Backoff{Initial: dur(t.Backoff.Initial), Max: dur(t.Backoff.Max),
				Multiplier: t.Backoff.Multiplier, Jitter: t.Backoff.Jitter},
		})
	}
	return out
}
