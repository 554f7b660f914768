package dag

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Field names, in the order the decoders index them.
var (
	workflowKeys = []string{"name", "description", "schedule", "timezone", "params", "defaults", "max_active_tasks", "tasks"}
	defaultsKeys = []string{"retries", "backoff", "timeout", "pool"}
	taskKeys     = []string{"id", "type", "depends_on", "trigger_rule", "retries", "backoff", "timeout", "pool", "command", "env", "workdir", "http"}
	backoffKeys  = []string{"initial", "max", "multiplier", "jitter"}
	httpKeys     = []string{"method", "url", "headers", "body", "expect_status"}
	taskTypes    = []string{string(TaskShell), string(TaskHTTP), string(TaskNoop)}
	httpMethods  = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

const (
	wName = iota
	wDescription
	wSchedule
	wTimezone
	wParams
	wDefaults
	wMaxActive
	wTasks
)

const (
	tID = iota
	tType
	tDependsOn
	tTriggerRule
	tRetries
	tBackoff
	tTimeout
	tPool
	tCommand
	tEnv
	tWorkdir
	tHTTP
)

// rawBackoff is a backoff block as written: nil fields were not set.
type rawBackoff struct {
	node       *yaml.Node
	initial    *time.Duration
	max        *time.Duration
	multiplier *float64
	jitter     *bool
}

// rawTask keeps the nodes validation reports problems at.
type rawTask struct {
	node *yaml.Node
	id   *yaml.Node   // value of id:, nil if absent
	deps []*yaml.Node // values of depends_on:, parallel to Task.DependsOn
	rule *yaml.Node   // value of trigger_rule:, nil if absent
}

// workflow decodes the document. Params are decoded before tasks whatever their order in the file,
// because task templates are checked against them.
func (p *parser) workflow(doc *yaml.Node) *Workflow {
	if len(doc.Content) == 0 {
		p.add(doc, ErrInvalid, atWorkflow, fpath{idx: -1}, "file is empty: a workflow needs at least name: and tasks:")
		return nil
	}
	var f [numWorkflowKeys]kv
	if !p.fields(doc.Content[0], atWorkflow, fpath{idx: -1}, "the workflow", workflowKeys, f[:]) {
		return nil
	}
	top := resolve(doc.Content[0])
	wf := &Workflow{limits: p.lim, params: map[string]string{}}
	if f[wName].v == nil {
		p.add(top, ErrInvalid, atWorkflow, field("name"), "missing required field name")
	} else if s, ok := p.str(f[wName].v, atWorkflow, field("name"), maxNameLen); ok {
		if validName(s) {
			wf.Name = s
		} else {
			p.invalid(f[wName].v, atWorkflow, field("name"), "%q is not a valid workflow name: use %s", s, nameRule)
		}
	}
	if f[wDescription].v != nil {
		wf.Description, _ = p.str(f[wDescription].v, atWorkflow, field("description"), p.lim.MaxStringBytes)
	}
	p.schedule(wf, f[wSchedule].v, f[wTimezone].v)
	if f[wParams].v != nil {
		p.params(wf, f[wParams].v)
	}
	var defBackoff rawBackoff
	wf.Defaults = Defaults{Backoff: DefaultBackoff(), Timeout: DefaultTimeout, Pool: DefaultPool}
	if f[wDefaults].v != nil {
		p.defaults(wf, f[wDefaults].v, &defBackoff)
	}
	if n := f[wMaxActive].v; n != nil {
		wf.MaxActiveTasks, _ = p.integer(n, atWorkflow, field("max_active_tasks"), 1, math.MaxInt32)
	}
	if f[wTasks].v == nil {
		p.add(top, ErrInvalid, atWorkflow, field("tasks"), "missing required field tasks")
		return wf
	}
	items, ok := p.seq(f[wTasks].v, atWorkflow, field("tasks"), "tasks", math.MaxInt)
	switch {
	case !ok:
		return wf
	case len(items) == 0:
		p.invalid(resolve(f[wTasks].v), atWorkflow, field("tasks"), "a workflow needs at least one task")
		return wf
	case len(items) > p.lim.MaxTasks:
		p.add(resolve(f[wTasks].v), ErrLimit, atWorkflow, field("tasks"), "tasks: %d tasks is more than the limit of %d", len(items), p.lim.MaxTasks)
		return wf
	}
	wf.Tasks = make([]*Task, len(items))
	raws := make([]rawTask, len(items))
	tasks := make([]Task, len(items)) // one allocation for all tasks
	for i, n := range items {
		t := &tasks[i]
		t.wf = wf
		wf.Tasks[i] = t
		p.task(wf, t, &raws[i], i, n, &defBackoff)
	}
	p.validate(wf, raws)
	return wf
}

// numWorkflowKeys is the number of workflow fields, as an array length.
const numWorkflowKeys = wTasks + 1

func (p *parser) schedule(wf *Workflow, sched, tz *yaml.Node) {
	loc := time.UTC
	if tz != nil {
		name, ok := p.str(tz, atWorkflow, field("timezone"), maxNameLen)
		switch {
		case !ok:
			return
		case sched == nil:
			p.invalid(resolve(tz), atWorkflow, field("timezone"), "only applies to a schedule, and this workflow has none")
			return
		case name == "" || name == "Local":
			p.invalid(resolve(tz), atWorkflow, field("timezone"), "%q is not an IANA time zone name such as Europe/Paris or UTC", name)
			return
		}
		l, err := time.LoadLocation(name)
		if err != nil {
			p.invalid(resolve(tz), atWorkflow, field("timezone"), "unknown time zone %q (use an IANA name such as Europe/Paris or UTC)", name)
			return
		}
		loc, wf.Timezone = l, name
	}
	if sched == nil {
		return
	}
	expr, ok := p.str(sched, atWorkflow, field("schedule"), 256)
	if !ok {
		return
	}
	s, err := parseCron(expr, loc)
	if err != nil {
		p.invalid(resolve(sched), atWorkflow, field("schedule"), "%v", err)
		return
	}
	wf.Schedule = s
}

func (p *parser) params(wf *Workflow, n *yaml.Node) {
	for _, e := range p.entries(n, atWorkflow, field("params"), "parameter names to default values") {
		name := e.k.Value
		if !validIdent(name, maxParamNameLen) {
			p.add(e.k, ErrInvalid, atWorkflow, field("params").dot(name), "params: %q is not a valid parameter name: use %s", name, paramRule)
			continue
		}
		v := resolve(e.v)
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			p.invalid(v, atWorkflow, field("params").dot(name), "needs a default value (\"\" is fine)")
			continue
		}
		def, ok := p.text(v, atWorkflow, field("params").dot(name), p.lim.MaxStringBytes)
		if !ok {
			continue
		}
		if mentionsSecret(def) {
			p.invalid(v, atWorkflow, field("params").dot(name), "a param default cannot reference a secret (it would be plain text, visible to every run); write {{ secret \"name\" }} in the env value, url, header or body that needs it")
			continue
		}
		wf.Params = append(wf.Params, Param{Name: name, Default: def})
		wf.params[name] = def
	}
}

func (p *parser) defaults(wf *Workflow, n *yaml.Node, bo *rawBackoff) {
	var f [4]kv
	if !p.fields(n, atWorkflow, field("defaults"), "defaults", defaultsKeys, f[:]) {
		return
	}
	d := &wf.Defaults
	if f[0].v != nil {
		d.Retries, _ = p.integer(f[0].v, atWorkflow, field("defaults.retries"), 0, p.lim.MaxRetries)
	}
	if f[1].v != nil {
		p.backoff(f[1].v, atWorkflow, field("defaults.backoff"), bo)
		d.Backoff = p.resolveBackoff(bo, DefaultBackoff(), atWorkflow, field("defaults.backoff"), "the built-in default")
	}
	if f[2].v != nil {
		if t, ok := p.duration(f[2].v, atWorkflow, field("defaults.timeout")); ok {
			d.Timeout = t
		}
	}
	if f[3].v != nil {
		if s, ok := p.pool(f[3].v, atWorkflow, field("defaults.pool")); ok {
			d.Pool = s
		}
	}
}

func (p *parser) pool(n *yaml.Node, w where, f fpath) (string, bool) {
	s, ok := p.str(n, w, f, maxNameLen)
	if ok && !validName(s) {
		p.invalid(resolve(n), w, f, "%q is not a valid pool name: use %s", s, nameRule)
		return "", false
	}
	return s, ok
}

// duration reads a positive Go duration string such as 30s or 1h30m.
func (p *parser) duration(n *yaml.Node, w where, f fpath) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		p.invalid(n, w, f, "%s has no unit: write a duration such as 30s, 10m or 1h30m", n.Value)
		return 0, false
	}
	s, ok := p.str(n, w, f, 64)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.invalid(n, w, f, "invalid duration %q: write a duration such as 30s, 10m or 1h30m", s)
		return 0, false
	}
	if d <= 0 {
		p.invalid(n, w, f, "duration must be positive, got %s", s)
		return 0, false
	}
	return d, true
}

func (p *parser) backoff(n *yaml.Node, w where, f fpath, bo *rawBackoff) {
	var b [4]kv
	if !p.fields(n, w, f, "backoff", backoffKeys, b[:]) {
		return
	}
	bo.node = resolve(n)
	if b[0].v != nil {
		if d, ok := p.duration(b[0].v, w, f.sub("initial")); ok {
			bo.initial = &d
		}
	}
	if b[1].v != nil {
		if d, ok := p.duration(b[1].v, w, f.sub("max")); ok {
			bo.max = &d
		}
	}
	if v := b[2].v; v != nil {
		v = resolve(v)
		var m float64
		switch {
		case v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") || v.Decode(&m) != nil:
			p.invalid(v, w, f.sub("multiplier"), "expected a number, got %s", describe(v))
		case math.IsNaN(m) || m < 1 || m > 100:
			p.invalid(v, w, f.sub("multiplier"), "%s is out of range [1, 100]", v.Value)
		default:
			bo.multiplier = &m
		}
	}
	if v := b[3].v; v != nil {
		v = resolve(v)
		var j bool
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&j) != nil {
			p.invalid(v, w, f.sub("jitter"), "expected true or false, got %s", describe(v))
		} else {
			bo.jitter = &j
		}
	}
}

// resolveBackoff fills the fields bo does not set from base and checks the result.
func (p *parser) resolveBackoff(bo *rawBackoff, base Backoff, w where, f fpath, baseName string) Backoff {
	b := base
	if bo.initial != nil {
		b.Initial = *bo.initial
	}
	if bo.max != nil {
		b.Max = *bo.max
	}
	if bo.multiplier != nil {
		b.Multiplier = *bo.multiplier
	}
	if bo.jitter != nil {
		b.Jitter = *bo.jitter
	}
	if b.Max < b.Initial && bo.node != nil {
		switch {
		case bo.max == nil:
			p.invalid(bo.node, w, f, "initial %s is more than max %s (from %s); set max too", b.Initial, b.Max, baseName)
		case bo.initial == nil:
			p.invalid(bo.node, w, f, "max %s is less than initial %s (from %s); set initial too", b.Max, b.Initial, baseName)
		default:
			p.invalid(bo.node, w, f, "max %s is less than initial %s", b.Max, b.Initial)
		}
		return base
	}
	return b
}

// task decodes task i. Its id is read first so every other problem can name the task.
func (p *parser) task(wf *Workflow, t *Task, raw *rawTask, i int, n *yaml.Node, defBackoff *rawBackoff) {
	w := where{idx: i}
	n = resolve(n)
	raw.node = n
	t.Pos = Pos{n.Line, n.Column}
	t.TriggerRule = AllSuccess
	t.Retries, t.Backoff, t.Timeout, t.Pool = wf.Defaults.Retries, wf.Defaults.Backoff, wf.Defaults.Timeout, wf.Defaults.Pool
	w.task = peekID(n) // so that problems found before id is read can name the task
	p.secrets = p.secrets[:0]
	defer func() { t.Secrets = secretNames(p.secrets) }()
	var f [tHTTP + 1]kv
	if !p.fields(n, w, fpath{idx: -1}, "a task", taskKeys, f[:]) {
		return
	}
	w.task = ""
	if f[tID].v == nil {
		p.add(n, ErrInvalid, w, field("id"), "task is missing required field id")
	} else if s, ok := p.str(f[tID].v, w, field("id"), maxNameLen); ok {
		raw.id = resolve(f[tID].v)
		if validName(s) {
			t.ID = s
			w.task = s
		} else {
			p.invalid(raw.id, w, field("id"), "%q is not a valid task id: use %s", s, nameRule)
		}
	}
	if f[tType].v == nil {
		p.add(n, ErrInvalid, w, field("type"), "missing required field type (shell, http or noop)")
	} else if s, ok := p.str(f[tType].v, w, field("type"), maxNameLen); ok {
		switch TaskType(s) {
		case TaskShell, TaskHTTP, TaskNoop:
			t.Type = TaskType(s)
		default:
			p.invalid(resolve(f[tType].v), w, field("type"), "unknown task type %q: use shell, http or noop%s", s, p.suggest(s, taskTypes))
		}
	}
	if v := f[tDependsOn].v; v != nil {
		if items, ok := p.seq(v, w, field("depends_on"), "task ids", math.MaxInt); ok {
			t.DependsOn, raw.deps = p.depSlices(len(items), len(wf.Tasks)-i)
			for j, it := range items {
				if s, ok := p.str(it, w, field("depends_on").at(j), maxNameLen); ok {
					t.DependsOn = append(t.DependsOn, s)
					raw.deps = append(raw.deps, resolve(it))
				}
			}
		}
	}
	if v := f[tTriggerRule].v; v != nil {
		if s, ok := p.str(v, w, field("trigger_rule"), maxNameLen); ok {
			raw.rule = resolve(v)
			switch r := TriggerRule(s); r {
			case AllSuccess, AllDone, OneSuccess, OneFailed, NoneFailed:
				t.TriggerRule = r
			default:
				p.invalid(raw.rule, w, field("trigger_rule"), "unknown trigger rule %q: use all_success, all_done, one_success, one_failed or none_failed%s", s, p.suggest(s, triggerRules))
			}
		}
	}
	if v := f[tRetries].v; v != nil {
		if r, ok := p.integer(v, w, field("retries"), 0, p.lim.MaxRetries); ok {
			t.Retries = r
		}
	}
	if v := f[tBackoff].v; v != nil {
		bo := *defBackoff // fields the task leaves unset come from defaults:, then the built-in values
		bo.node = nil
		var own rawBackoff
		p.backoff(v, w, field("backoff"), &own)
		if own.initial != nil {
			bo.initial = own.initial
		}
		if own.max != nil {
			bo.max = own.max
		}
		if own.multiplier != nil {
			bo.multiplier = own.multiplier
		}
		if own.jitter != nil {
			bo.jitter = own.jitter
		}
		bo.node = own.node
		t.Backoff = p.resolveBackoff(&bo, DefaultBackoff(), w, field("backoff"), "defaults or the built-in default")
	}
	if v := f[tTimeout].v; v != nil {
		if d, ok := p.duration(v, w, field("timeout")); ok {
			t.Timeout = d
		}
	}
	if v := f[tPool].v; v != nil {
		if s, ok := p.pool(v, w, field("pool")); ok {
			t.Pool = s
		}
	}
	// Fields of the other task types are errors, not silently ignored.
	notFor := func(k int, name string) {
		if f[k].v != nil {
			p.invalid(f[k].k, w, field(name), "not allowed on a %s task", t.Type)
		}
	}
	switch t.Type {
	case TaskShell:
		notFor(tHTTP, "http")
		t.Shell = &ShellSpec{}
		if f[tCommand].v == nil {
			p.add(n, ErrInvalid, w, field("command"), "a shell task needs command (a list of arguments, or a string run with /bin/sh -c)")
		} else {
			p.command(wf, t.Shell, f[tCommand].v, w)
		}
		if f[tEnv].v != nil {
			t.Shell.Env = p.env(wf, f[tEnv].v, w)
		}
		if v := f[tWorkdir].v; v != nil {
			if s, ok := p.str(v, w, field("workdir"), p.lim.MaxStringBytes); ok {
				if s == "" {
					p.invalid(resolve(v), w, field("workdir"), "is empty; leave it out to let the worker choose")
				}
				t.Shell.Workdir = s
				p.templated(wf, resolve(v), w, field("workdir"), s, p.lim.MaxStringBytes, false, always(checkNoNUL))
			}
		}
	case TaskHTTP:
		notFor(tCommand, "command")
		notFor(tEnv, "env")
		notFor(tWorkdir, "workdir")
		if f[tHTTP].v == nil {
			p.add(n, ErrInvalid, w, field("http"), "an http task needs http (with at least url)")
		} else {
			t.HTTP = p.http(wf, f[tHTTP].v, w)
		}
	case TaskNoop:
		notFor(tCommand, "command")
		notFor(tEnv, "env")
		notFor(tWorkdir, "workdir")
		notFor(tHTTP, "http")
	}
}

// depSlices returns empty slices of capacity n for a task's dependencies, carved from shared
// chunks so that a workflow of many tasks does not allocate twice per task. The capacity is capped
// at n: appending beyond it copies instead of writing into the next task's dependencies. A chunk
// is sized for the rest tasks still to decode (two dependencies each, at most 1024 in all), so a
// small workflow does not keep a large chunk alive.
func (p *parser) depSlices(n, rest int) ([]string, []*yaml.Node) {
	if len(p.depStrs) < n || p.depStrs == nil { // never nil: depends_on: [] stays a non-nil empty list
		size := max(n, min(1024, 2*rest))
		p.depStrs = make([]string, size)
		p.depNodes = make([]*yaml.Node, size)
	}
	s, d := p.depStrs[:0:n], p.depNodes[:0:n]
	p.depStrs, p.depNodes = p.depStrs[n:], p.depNodes[n:]
	return s, d
}

// peekID returns the task's id if it is set to a valid one, else "".
func peekID(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := resolve(n.Content[i]), resolve(n.Content[i+1]); k.Value == "id" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" && validName(v.Value) {
			return v.Value
		}
	}
	return ""
}

// shellNames are the programs whose -c argument is a script: templates may not reach it.
var shellNames = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "ash": true, "busybox": true}

func (p *parser) command(wf *Workflow, s *ShellSpec, n *yaml.Node, w where) {
	n = resolve(n)
	f := field("command")
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		script, ok := p.str(n, w, f, p.lim.MaxStringBytes)
		switch {
		case !ok:
		case strings.TrimSpace(script) == "":
			p.invalid(n, w, f, "the script is empty")
		case mentionsSecret(script):
			p.invalid(n, w, f, "secrets are not allowed in a shell script string; pass the secret through env (env: {TOKEN: '{{ secret \"name\" }}'}) and use \"$TOKEN\" in the script")
		case hasTemplate(script):
			p.invalid(n, w, f, "templates are not allowed in a shell script string, where a parameter value would become shell code; pass it through env (env: {DAY: \"{{ .params.day }}\"}) and use \"$DAY\" in the script")
		case strings.IndexByte(script, 0) >= 0:
			p.invalid(n, w, f, "contains a NUL byte")
		default:
			s.Script = script
		}
		return
	}
	items, ok := p.seq(n, w, f, "arguments (or a string run with /bin/sh -c)", p.lim.MaxEntries)
	if !ok {
		return
	}
	if len(items) == 0 {
		p.invalid(n, w, f, "the argument list is empty")
		return
	}
	s.Argv = make([]string, 0, len(items))
	scriptArg := -1 // index of the argument a shell runs as a script, if any
	for j, it := range items {
		arg, ok := p.text(it, w, f.at(j), p.lim.MaxStringBytes)
		if !ok {
			continue
		}
		s.Argv = append(s.Argv, arg)
		switch {
		case j == 0 && arg == "":
			p.invalid(resolve(it), w, f.at(j), "the program to run is empty")
		case (j == 0 || j == scriptArg) && mentionsSecret(arg):
			what := "the script a shell runs with -c"
			if j == 0 {
				what = "the program to run"
			}
			p.invalid(resolve(it), w, f.at(j), "secrets are not allowed in %s; pass the secret through env (env: {TOKEN: '{{ secret \"name\" }}'}) and use \"$TOKEN\"", what)
		case j == 0 && hasTemplate(arg):
			p.invalid(resolve(it), w, f.at(j), "the program to run cannot be a template")
		case j == scriptArg && hasTemplate(arg):
			p.invalid(resolve(it), w, f.at(j), "templates are not allowed in the script a shell runs with -c, where a parameter value would become shell code; pass it through env and use \"$NAME\" in the script")
		default:
			p.templated(wf, resolve(it), w, f.at(j), arg, p.lim.MaxStringBytes, false, always(checkNoNUL))
		}
		if j > 0 && scriptArg < 0 && shellNames[baseName(s.Argv[0])] && isShellCFlag(arg) {
			scriptArg = j + 1
		}
	}
}

// isShellCFlag reports whether a shell argument is an option cluster holding -c (-c, -ec, -xc...).
func isShellCFlag(a string) bool {
	return len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a, 'c') > 0
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (p *parser) env(wf *Workflow, n *yaml.Node, w where) map[string]string {
	f := field("env")
	es := p.entries(n, w, f, "variable names to values")
	env := make(map[string]string, len(es))
	for _, e := range es {
		name := e.k.Value
		switch {
		case !validIdent(name, maxKeyLen):
			p.add(e.k, ErrInvalid, w, f.dot(name), "env: %q is not a valid variable name: use A-Z, a-z, 0-9 and '_', not starting with a digit", name)
			continue
		case strings.HasPrefix(strings.ToUpper(name), "CAIRN_"):
			p.add(e.k, ErrInvalid, w, f.dot(name), "env: %q: names starting with CAIRN_ are reserved for the variables Cairn sets", name)
			continue
		}
		v, ok := p.text(e.v, w, f.dot(name), p.lim.MaxStringBytes)
		if !ok {
			continue
		}
		env[name] = v
		p.templated(wf, resolve(e.v), w, f.dot(name), v, p.lim.MaxStringBytes, true, always(checkNoNUL))
	}
	return env
}

func (p *parser) http(wf *Workflow, n *yaml.Node, w where) *HTTPSpec {
	var f [5]kv
	h := &HTTPSpec{Method: http.MethodGet}
	if !p.fields(n, w, field("http"), "http", httpKeys, f[:]) {
		return h
	}
	if v := f[0].v; v != nil {
		if s, ok := p.str(v, w, field("http.method"), 16); ok {
			if i := indexOf(httpMethods, s); i >= 0 {
				h.Method = s
			} else if i := indexOf(httpMethods, strings.ToUpper(s)); i >= 0 {
				p.invalid(resolve(v), w, field("http.method"), "unknown method %q (did you mean %q?)", s, httpMethods[i])
			} else {
				p.invalid(resolve(v), w, field("http.method"), "unknown method %q: use one of %s", s, strings.Join(httpMethods, ", "))
			}
		}
	}
	if v := f[1].v; v == nil {
		p.add(resolve(n), ErrInvalid, w, field("http.url"), "http: missing required field url")
	} else if s, ok := p.str(v, w, field("http.url"), p.lim.MaxURLBytes); ok {
		h.URL = s
		p.templated(wf, resolve(v), w, field("http.url"), s, p.lim.MaxURLBytes, true, checkURLOrSecret)
	}
	if v := f[2].v; v != nil {
		f := field("http.headers")
		es := p.entries(v, w, f, "header names to values")
		h.Headers = make(map[string]string, len(es))
		canon := make(map[string]string, len(es))
		for _, e := range es {
			name := e.k.Value
			c := http.CanonicalHeaderKey(name)
			switch {
			case !validHeaderName(name):
				p.add(e.k, ErrInvalid, w, f.dot(name), "http.headers: %q is not a valid header name", name)
				continue
			case c == "Idempotency-Key":
				p.add(e.k, ErrInvalid, w, f.dot(name), "http.headers: Idempotency-Key is set by Cairn for every attempt and cannot be overridden")
				continue
			case canon[c] != "":
				p.add(e.k, ErrInvalid, w, f.dot(name), "http.headers: %q repeats header %q (names are case-insensitive)", name, canon[c])
				continue
			}
			canon[c] = name
			if s, ok := p.text(e.v, w, f.dot(name), p.lim.MaxStringBytes); ok {
				h.Headers[name] = s
				p.templated(wf, resolve(e.v), w, f.dot(name), s, p.lim.MaxStringBytes, true, always(checkHeaderValue))
			}
		}
	}
	if v := f[3].v; v != nil {
		rv := resolve(v)
		if rv.Kind != yaml.ScalarNode {
			p.invalid(rv, w, field("http.body"), "expected a string, got %s (write JSON as a quoted string)", describe(rv))
		} else if s, ok := p.str(v, w, field("http.body"), p.lim.MaxBodyBytes); ok {
			h.Body = s
			p.templated(wf, rv, w, field("http.body"), s, p.lim.MaxBodyBytes, true, nil)
		}
	}
	if v := f[4].v; v != nil {
		f := field("http.expect_status")
		if items, ok := p.seq(v, w, f, "status codes such as [200, 204]", p.lim.MaxEntries); ok {
			for j, it := range items {
				code, ok := p.integer(it, w, f.at(j), 100, 599)
				if !ok {
					continue
				}
				if indexOfInt(h.ExpectStatus, code) >= 0 {
					p.invalid(resolve(it), w, f.at(j), "status %d is listed twice", code)
					continue
				}
				h.ExpectStatus = append(h.ExpectStatus, code)
			}
		}
	}
	return h
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", s, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// templated checks a value that may hold a template: it must parse, follow the template rules and
// render with the declared defaults, and the result (or the literal value) must pass check.
// secrets says whether the field may reference secrets; the names referenced are added to
// p.secrets, the current task's.
func (p *parser) templated(wf *Workflow, n *yaml.Node, w where, f fpath, src string, max int, secrets bool, checkFor func(*secretScope) func(string) error) {
	out := src
	var sec *secretScope // placeholders of the validation rendering, for checks that need them
	if hasTemplate(src) {
		sec = &secretScope{nonce: validationNonce}
	}
	var check func(string) error
	if checkFor != nil {
		check = checkFor(sec)
	}
	if hasTemplate(src) {
		c := &treeChecker{declared: func(name string) bool { _, ok := wf.params[name]; return ok }, names: paramNames(wf), field: f.String(), secrets: secrets}
		t, err := parseTemplate(src, c)
		if err != nil {
			p.invalid(n, w, f, "%v", err)
			return
		}
		p.secrets = append(p.secrets, c.refs...)
		if out, err = execTemplate(t, wf.params, max, sec, secrets); err != nil {
			p.invalid(n, w, f, "rendering with the default params: %v", err)
			return
		}
	}
	if check != nil {
		if err := check(out); err != nil {
			if out != src {
				p.invalid(n, w, f, "rendered with the default params: %v", err)
			} else {
				p.invalid(n, w, f, "%v", err)
			}
		}
	}
}

// always is a field check that does not depend on the secret placeholders of the rendering.
func always(check func(string) error) func(*secretScope) func(string) error {
	return func(*secretScope) func(string) error { return check }
}

func paramNames(wf *Workflow) []string {
	names := make([]string, len(wf.Params))
	for i, prm := range wf.Params {
		names[i] = prm.Name
	}
	return names
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func indexOfInt(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
