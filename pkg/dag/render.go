package dag

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// RenderedTask is a task's executable part with every template expanded for one run. Secrets
// are not resolved: each {{ secret "name" }} is a placeholder that Secrets lists (see
// SecretRef); the worker replaces them with the values.
type RenderedTask struct {
	Shell   *ShellSpec  // set for shell tasks
	HTTP    *HTTPSpec   // set for http tasks
	Secrets []SecretRef // the secrets this rendering references, by name; nil when none
}

// ResolveParams returns the parameters of a run: the declared defaults overridden by run. A run
// parameter the workflow does not declare, or a value over the string limit, is an error wrapping
// ErrParams.
func (w *Workflow) ResolveParams(run map[string]string) (map[string]string, error) {
	out := maps.Clone(w.params)
	var unknown []string
	for k, v := range run {
		if _, ok := w.params[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		if len(v) > w.limits.MaxStringBytes {
			return nil, fmt.Errorf("%w: param %q is longer than the limit of %d bytes", ErrParams, k, w.limits.MaxStringBytes)
		}
		out[k] = v
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		declared := "none"
		if len(w.Params) > 0 {
			declared = strings.Join(paramNames(w), ", ")
		}
		return nil, fmt.Errorf("%w: workflow %q has no param %s (declared: %s)", ErrParams, w.Name, strings.Join(quoteAll(unknown), ", "), declared)
	}
	return out, nil
}

// ValidateParams checks run parameters without rendering anything.
func (w *Workflow) ValidateParams(run map[string]string) error {
	_, err := w.ResolveParams(run)
	return err
}

// Render expands the task's templates with the workflow's param defaults overridden by run
// params. The result is checked like the file was: a run parameter that turns a URL into a
// non-http one, or puts a line break in a header, is an error wrapping ErrParams. Secret
// references become placeholders with a nonce drawn for this call (RenderedTask.Secrets), so
// two renderings of one task differ when it references secrets.
func (t *Task) Render(run map[string]string) (RenderedTask, error) {
	params, err := t.wf.ResolveParams(run)
	if err != nil {
		return RenderedTask{}, err
	}
	lim := t.wf.limits
	r := renderer{task: t.ID, params: params, sec: &secretScope{}}
	var out RenderedTask
	switch {
	case t.Shell != nil:
		s := &ShellSpec{Script: t.Shell.Script}
		if t.Shell.Argv != nil {
			s.Argv = make([]string, len(t.Shell.Argv))
			for i, a := range t.Shell.Argv {
				s.Argv[i] = r.do(fmt.Sprintf("command[%d]", i), a, lim.MaxStringBytes, false, checkNoNUL)
			}
		}
		if t.Shell.Env != nil {
			s.Env = make(map[string]string, len(t.Shell.Env))
			for k, v := range t.Shell.Env {
				s.Env[k] = r.do("env."+k, v, lim.MaxStringBytes, true, checkNoNUL)
			}
		}
		s.Workdir = r.do("workdir", t.Shell.Workdir, lim.MaxStringBytes, false, checkNoNUL)
		out.Shell = s
	case t.HTTP != nil:
		h := &HTTPSpec{Method: t.HTTP.Method, ExpectStatus: slices.Clone(t.HTTP.ExpectStatus)}
		h.URL = r.do("http.url", t.HTTP.URL, lim.MaxURLBytes, true, checkURLOrSecret(r.sec))
		if t.HTTP.Headers != nil {
			h.Headers = make(map[string]string, len(t.HTTP.Headers))
			for k, v := range t.HTTP.Headers {
				h.Headers[k] = r.do("http.headers."+k, v, lim.MaxStringBytes, true, checkHeaderValue)
			}
		}
		h.Body = r.do("http.body", t.HTTP.Body, lim.MaxBodyBytes, true, nil)
		out.HTTP = h
	}
	if r.err != nil {
		return RenderedTask{}, r.err
	}
	out.Secrets = r.sec.list()
	return out, nil
}

// renderer expands fields one after the other and keeps the first error.
type renderer struct {
	task   string
	params map[string]string
	sec    *secretScope // shared by the task's fields: one nonce per Render
	err    error
}

func (r *renderer) do(field, src string, max int, secrets bool, check func(string) error) string {
	if r.err != nil || !hasTemplate(src) {
		return src // literal values were checked by Parse
	}
	out, err := render(src, r.params, max, r.sec, secrets)
	if err == nil && check != nil {
		err = check(out)
	}
	if err != nil {
		r.err = fmt.Errorf("%w: task %q: %s: %v", ErrParams, r.task, field, err)
		return ""
	}
	return out
}

func quoteAll(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return q
}
