package dag

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Built-in defaults, used when neither a task nor the workflow's defaults: block sets a value.
const (
	DefaultPool    = "default"
	DefaultTimeout = time.Hour
)

// DefaultBackoff is the retry backoff used for every field neither the task nor defaults: sets.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: true}
}

// Workflow is a parsed and validated workflow file. It is immutable after Parse and safe for
// concurrent use.
type Workflow struct {
	Name        string
	Description string
	// Schedule is nil when the workflow runs only on demand.
	Schedule *Schedule
	// Timezone is the IANA zone the schedule is read in; "" means UTC.
	Timezone string
	// Params are the declared parameters with their defaults, in file order.
	Params []Param
	// Defaults holds the resolved workflow-level defaults (already applied to every task).
	Defaults Defaults
	// MaxActiveTasks bounds the tasks of one run that may be active at once; 0 means no bound.
	MaxActiveTasks int
	// Tasks in file order; Tasks[i] is node i of Graph.
	Tasks []*Task
	Graph *Graph

	limits Limits
	params map[string]string // name → default
}

// Param is one declared parameter and its default value.
type Param struct {
	Name    string
	Default string
}

// Defaults are the workflow-level values tasks inherit.
type Defaults struct {
	Retries int
	Backoff Backoff
	Timeout time.Duration
	Pool    string
}

// Backoff is the delay between a failed attempt and the next: Initial, multiplied by Multiplier
// after each attempt, capped at Max; with Jitter the scheduler randomises each delay.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     bool
}

// TaskType says which executor runs a task.
type TaskType string

// Task types.
const (
	TaskShell TaskType = "shell" // run a command: an argv list, or a script under /bin/sh -c
	TaskHTTP  TaskType = "http"  // make one HTTP request
	TaskNoop  TaskType = "noop"  // succeed at once; a join or marker point
)

// Pos is a position in the workflow file.
type Pos struct {
	Line, Column int
}

// Task is one node of the workflow. Retries, Backoff, Timeout and Pool are resolved: the task's own
// value, else the workflow's defaults, else the built-in default.
type Task struct {
	ID          string
	Type        TaskType
	DependsOn   []string // as written
	TriggerRule TriggerRule
	Retries     int
	Backoff     Backoff
	Timeout     time.Duration
	Pool        string
	Shell       *ShellSpec // set iff Type == TaskShell
	HTTP        *HTTPSpec  // set iff Type == TaskHTTP
	Pos         Pos        // where the task's mapping starts
	// Secrets are the names of the secrets the task's templates reference ({{ secret "name" }}),
	// sorted, each once, whatever branch of an if they are in; nil when none.
	Secrets []string

	wf *Workflow
}

// ShellSpec is what a shell task runs. Exactly one of Argv and Script is set. Argv elements, Env
// values and Workdir may hold templates; Script never does (see the package documentation).
// Only Env values may reference secrets.
type ShellSpec struct {
	Argv    []string          // exec'd directly, no shell
	Script  string            // run as /bin/sh -c Script
	Env     map[string]string // added to the environment; keys are never templates
	Workdir string            // "" means the worker's choice
}

// HTTPSpec is the request an http task makes. URL, header values and Body may hold templates,
// secret references included.
type HTTPSpec struct {
	Method       string
	URL          string
	Headers      map[string]string
	Body         string
	ExpectStatus []int // empty means any 2xx status
}

// Schedule is a parsed cron schedule.
type Schedule struct {
	Expr     string         // as written
	Location *time.Location // zone the expression is read in (UTC unless timezone: is set)
	spec     cron.Schedule
}

// Next returns the first activation strictly after t, or the zero time if there is none within five
// years.
func (s *Schedule) Next(t time.Time) time.Time { return s.spec.Next(t) }

// Param returns the default of the named parameter.
func (w *Workflow) Param(name string) (string, bool) {
	v, ok := w.params[name]
	return v, ok
}
