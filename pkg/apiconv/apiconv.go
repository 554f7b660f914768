// Package apiconv converts Cairn's domain values (pkg/model, pkg/dag, pkg/store rows) into
// the public API messages of pkg/api/cairn/v1. Domain packages never see protobuf types; the
// gateway (reads) and the scheduler (mutation responses) both convert here, so a run looks
// the same whichever of them answers.
package apiconv

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

// Timestamp converts a time; the zero time is no timestamp.
func Timestamp(t time.Time) *timestamppb.Timestamp {
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

// FailureKind converts a stored failure kind.
func FailureKind(k model.FailureKind) cairnv1.FailureKind {
	if k == model.FailureNone {
		return cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED
	}
	return cairnv1.FailureKind(cairnv1.FailureKind_value["FAILURE_KIND_"+strings.ToUpper(string(k))])
}

func taskType(t dag.TaskType) cairnv1.TaskType {
	return cairnv1.TaskType(cairnv1.TaskType_value["TASK_TYPE_"+strings.ToUpper(string(t))])
}

func triggerRule(r dag.TriggerRule) cairnv1.TriggerRule {
	return cairnv1.TriggerRule(cairnv1.TriggerRule_value["TRIGGER_RULE_"+strings.ToUpper(string(r))])
}

func runTrigger(t model.Trigger) cairnv1.RunTrigger {
	if t == model.TriggerSchedule {
		return cairnv1.RunTrigger_RUN_TRIGGER_SCHEDULE
	}
	return cairnv1.RunTrigger_RUN_TRIGGER_API // manual, and retries (an API action)
}

// attemptState maps the store's finer attempt states onto the API's four; the API tells the
// failed ones apart by failure_kind.
func attemptState(s model.AttemptState, k model.FailureKind) (cairnv1.AttemptState, cairnv1.FailureKind) {
	fk := FailureKind(k)
	switch s {
	case model.AttemptAssigned:
		return cairnv1.AttemptState_ATTEMPT_STATE_ASSIGNED, fk
	case model.AttemptRunning:
		return cairnv1.AttemptState_ATTEMPT_STATE_RUNNING, fk
	case model.AttemptSucceeded:
		return cairnv1.AttemptState_ATTEMPT_STATE_SUCCEEDED, fk
	case model.AttemptTimedOut:
		if fk == cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			fk = cairnv1.FailureKind_FAILURE_KIND_TIMEOUT
		}
	case model.AttemptLost:
		fk = cairnv1.FailureKind_FAILURE_KIND_LOST
	case model.AttemptCancelled:
		fk = cairnv1.FailureKind_FAILURE_KIND_CANCELLED
	case model.AttemptStale:
		fk = cairnv1.FailureKind_FAILURE_KIND_STALE
	}
	return cairnv1.AttemptState_ATTEMPT_STATE_FAILED, fk
}

func optInt32(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

// Attempt converts one attempt of a run of namespace ns, with its output made valid UTF-8.
func Attempt(ns string, a model.Attempt) *cairnv1.Attempt {
	st, fk := attemptState(a.State, a.FailureKind)
	return &cairnv1.Attempt{
		Namespace:       ns,
		AttemptId:       a.ID.String(),
		RunId:           a.RunID.String(),
		TaskId:          a.TaskID,
		Attempt:         int32(a.Number),
		WorkerId:        a.WorkerID,
		State:           st,
		FailureKind:     fk,
		ExitCode:        optInt32(a.ExitCode),
		HttpStatus:      optInt32(a.HTTPStatus),
		Output:          strings.ToValidUTF8(string(a.Output), "\uFFFD"),
		OutputTruncated: a.OutputTruncated,
		Error:           a.Error,
		AssignedAt:      Timestamp(a.AssignedAt),
		StartedAt:       Timestamp(a.StartedAt),
		FinishedAt:      Timestamp(a.FinishedAt),
	}
}

// Run converts a run without its tasks.
func Run(r model.Run) *cairnv1.Run {
	params := r.Params
	if params == nil {
		params = map[string]string{}
	}
	return &cairnv1.Run{
		RunId:           r.ID.String(),
		Namespace:       r.Namespace,
		Workflow:        r.Workflow,
		WorkflowVersion: int64(r.Version),
		State:           runState(r.State),
		Params:          params,
		IdempotencyKey:  r.IdempotencyKey,
		Trigger:         runTrigger(r.Trigger),
		CreatedAt:       Timestamp(r.CreatedAt),
		StartedAt:       Timestamp(r.StartedAt),
		FinishedAt:      Timestamp(r.FinishedAt),
		Reason:          r.Error,
	}
}

// RunDetail converts a run with its tasks; wf (the run's workflow version, nil if it could
// not be read) supplies each task's type and attempt budget.
func RunDetail(d store.RunDetail, wf *dag.Workflow) *cairnv1.Run {
	out := Run(d.Run)
	tasks := map[string]*dag.Task{}
	if wf != nil {
		for _, t := range wf.Tasks {
			tasks[t.ID] = t
		}
	}
	for _, t := range d.Tasks {
		tr := &cairnv1.TaskRun{
			TaskId:        t.TaskID,
			State:         taskState(t.State),
			Attempt:       int32(t.Attempt),
			WorkerId:      t.WorkerID,
			StartedAt:     Timestamp(t.StartedAt),
			FinishedAt:    Timestamp(t.FinishedAt),
			NextAttemptAt: Timestamp(t.NextAttemptAt),
			LastError:     t.LastError,
		}
		if spec, ok := tasks[t.TaskID]; ok {
			tr.Type = taskType(spec.Type)
			tr.MaxAttempts = int32(spec.Retries + 1)
		}
		out.Tasks = append(out.Tasks, tr)
	}
	return out
}

// Workflow converts a stored version; wf is its parsed DAG (nil if the stored YAML no longer
// parses, which leaves the DAG fields empty). full adds the tasks and the YAML source.
func Workflow(v model.WorkflowVersion, wf *dag.Workflow, full bool) *cairnv1.Workflow {
	out := &cairnv1.Workflow{
		Namespace:   v.Namespace,
		Name:        v.Workflow,
		Version:     int64(v.Version),
		ContentHash: v.Hash,
		Params:      map[string]string{},
		CreatedAt:   Timestamp(v.CreatedAt),
	}
	if full {
		out.Yaml = v.YAML
	}
	if wf == nil {
		return out
	}
	out.Description = wf.Description
	if wf.Schedule != nil {
		out.Schedule = wf.Schedule.Expr
	}
	out.Timezone = wf.Timezone
	for _, p := range wf.Params {
		out.Params[p.Name] = p.Default
	}
	out.MaxActiveTasks = int32(wf.MaxActiveTasks)
	if full {
		for _, t := range wf.Tasks {
			out.Tasks = append(out.Tasks, Task(t))
		}
	}
	return out
}

// Task converts a task of a workflow's DAG.
func Task(t *dag.Task) *cairnv1.Task {
	return &cairnv1.Task{
		Id:          t.ID,
		Type:        taskType(t.Type),
		DependsOn:   append([]string{}, t.DependsOn...),
		TriggerRule: triggerRule(t.TriggerRule),
		Pool:        t.Pool,
		Retries:     int32(t.Retries),
		Timeout:     dur(t.Timeout),
		Backoff: &cairnv1.Backoff{
			Initial:    dur(t.Backoff.Initial),
			Max:        dur(t.Backoff.Max),
			Multiplier: t.Backoff.Multiplier,
			Jitter:     t.Backoff.Jitter,
		},
	}
}

// Event converts one history entry. State changes fill run_state or task_state; other kinds
// (attempt started, stale result, dead-lettered, replayed, notes) carry their kind in message.
func Event(e model.Event) *cairnv1.RunEvent {
	out := &cairnv1.RunEvent{
		Seq:     e.Seq,
		Time:    Timestamp(e.At),
		RunId:   e.RunID.String(),
		TaskId:  e.TaskID,
		Attempt: int32(e.Attempt),
		Message: e.Message,
	}
	switch e.Kind {
	case model.EventRunState:
		out.RunState = runState(model.RunState(e.To))
	case model.EventTaskState:
		out.TaskState = taskState(model.TaskState(e.To))
	default:
		if out.Message == "" {
			out.Message = string(e.Kind)
		} else {
			out.Message = string(e.Kind) + ": " + out.Message
		}
	}
	return out
}

// ValidationErrors converts a workflow file's problems, one message each.
func ValidationErrors(file string, list dag.ErrorList) []*cairnv1.ValidationError {
	out := make([]*cairnv1.ValidationError, 0, len(list))
	for _, e := range list {
		out = append(out, &cairnv1.ValidationError{
			File:    file,
			Line:    int32(e.Line),
			Column:  int32(e.Column),
			TaskId:  e.TaskID,
			Field:   e.Field,
			Message: e.Msg,
		})
	}
	return out
}

// Namespace converts a namespace.
func Namespace(n model.Namespace) *cairnv1.Namespace {
	return &cairnv1.Namespace{Name: n.Name, Description: n.Description, CreatedAt: Timestamp(n.CreatedAt)}
}

// Secret converts what is known about a secret (never its value, which model.Secret does not
// hold).
func Secret(s model.Secret) *cairnv1.Secret {
	return &cairnv1.Secret{Namespace: s.Namespace, Name: s.Name, KeyId: s.KeyID, CreatedAt: Timestamp(s.CreatedAt),
		UpdatedAt: Timestamp(s.UpdatedAt), UpdatedBy: s.UpdatedBy}
}
