package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairn-io/cairn/pkg/egress"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/localrun"
)

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdRun(e *env, args []string) int {
	if !hasLocalFlag(args) {
		return runRemote(e, args)
	}
	fs := newFlags(e, "run")
	local := fs.Bool("local", false, "run in this process: no PostgreSQL, etcd or workers")
	params := paramsFlag{}
	fs.Var(params, "p", "set a param: -p key=value (repeatable)")
	parallel := fs.Int("parallel", 1, "with --local: how many tasks may run at once")
	asJSON := fs.Bool("json", false, "print the final report as JSON instead of progress and a table")
	var roots listFlag
	fs.Var(&roots, "allow-workdir", "with --local: a directory tasks' workdir may be in (repeatable; default: the current directory)")
	egressAllow := fs.String("egress-allow", "", "with --local: CIDRs HTTP tasks may call although blocked by default (loopback, link-local, private…), comma-separated, e.g. 127.0.0.1/32")
	secretsFile := fs.String("secrets-file", "", "with --local: a file of name=value lines for the workflow's {{ secret \"name\" }} references (else CAIRN_SECRET_<NAME> variables)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if !*local { // --local=false
		return runRemote(e, args)
	}
	if len(pos) != 1 {
		return usageError(e, "run", "want exactly one workflow file, got %d", len(pos))
	}
	if *parallel < 1 {
		return usageError(e, "run", "--parallel must be at least 1, got %d", *parallel)
	}
	allow, err := egress.ParseAllowList(*egressAllow)
	if err != nil {
		return usageError(e, "run", "--egress-allow: %v", err)
	}
	wf, err := loadWorkflow(pos[0])
	if err != nil {
		for _, x := range errorsOf(pos[0], err) {
			fmt.Fprintln(e.stderr, x.Text)
		}
		return ExitFail
	}
	if len(roots) == 0 {
		if wd, err := os.Getwd(); err == nil {
			roots = append(roots, wd)
		}
	}
	ex, err := executor.New(executor.Config{AllowedWorkdirRoots: roots, EgressAllow: allow})
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl run: %v\n", err)
		return ExitFail
	}
	secrets, err := localrun.LoadSecrets(*secretsFile, os.Environ())
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl run: %v\n", err)
		return ExitFail
	}
	cfg := localrun.Config{Params: params, Parallel: *parallel, Executor: ex, Secrets: secrets}
	if !*asJSON {
		fmt.Fprintf(e.stdout, "running %s (%d tasks, parallel %d) locally\n", wf.Name, len(wf.Tasks), *parallel)
		if len(allow) > 0 {
			fmt.Fprintf(e.stdout, "HTTP tasks may also call %s (--egress-allow)\n", egress.FormatAllowList(allow))
		}
		cfg.OnEvent = func(ev localrun.Event) { printEvent(e.stdout, ev) }
	}
	rep, err := localrun.Run(e.ctx, wf, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl run: %v\n", err)
		return ExitFail
	}
	if *asJSON {
		writeReportJSON(e.stdout, rep)
	} else {
		printSummary(e.stdout, rep)
	}
	if rep.State != localrun.Succeeded {
		return ExitFail
	}
	return ExitOK
}

// hasLocalFlag reports whether args hold --local (or -local, --local=true) before any "--".
func hasLocalFlag(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--local", "-local", "--local=true", "-local=true":
			return true
		}
	}
	return false
}

func printEvent(w io.Writer, ev localrun.Event) {
	prefix := fmt.Sprintf("%s [%d/%d] %-24s", ev.Time.Format("15:04:05.000"), ev.Done, ev.Total, ev.TaskID)
	switch ev.Kind {
	case localrun.EventStarted:
		fmt.Fprintf(w, "%s started (attempt %d)\n", prefix, ev.Attempt)
	case localrun.EventSucceeded:
		fmt.Fprintf(w, "%s succeeded in %s\n", prefix, round(ev.Duration))
	case localrun.EventRetrying:
		fmt.Fprintf(w, "%s attempt %d failed: %s; retrying in %s\n", prefix, ev.Attempt, oneLine(ev.Error), round(ev.Delay))
	case localrun.EventFailed:
		fmt.Fprintf(w, "%s failed after %d attempt(s): %s\n", prefix, ev.Attempt, oneLine(ev.Error))
	case localrun.EventSkipped:
		fmt.Fprintf(w, "%s skipped (trigger rule)\n", prefix)
	case localrun.EventUpstream:
		fmt.Fprintf(w, "%s upstream failed\n", prefix)
	case localrun.EventCancelled:
		fmt.Fprintf(w, "%s cancelled\n", prefix)
	}
}

func printSummary(w io.Writer, rep *localrun.Report) {
	fmt.Fprintf(w, "\nrun %s of %s: %s in %s\n\n", rep.RunID, rep.Workflow, strings.ToUpper(string(rep.State)), round(rep.Finished.Sub(rep.Started)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tDURATION\tEXIT\tERROR")
	for _, t := range rep.Tasks {
		exit := "-"
		if t.ExitCode >= 0 {
			exit = fmt.Sprint(t.ExitCode)
		} else if t.HTTPStatus > 0 {
			exit = fmt.Sprintf("HTTP %d", t.HTTPStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.State, t.Attempts, round(t.Duration), exit, oneLine(t.Error))
	}
	_ = tw.Flush()
}

func writeReportJSON(w io.Writer, rep *localrun.Report) {
	type taskJSON struct {
		ID         string  `json:"id"`
		State      string  `json:"state"`
		Attempts   int     `json:"attempts"`
		DurationS  float64 `json:"duration_seconds"`
		ExitCode   *int    `json:"exit_code,omitempty"`
		HTTPStatus int     `json:"http_status,omitempty"`
		Error      string  `json:"error,omitempty"`
		Output     string  `json:"output,omitempty"`
	}
	out := struct {
		RunID    string     `json:"run_id"`
		Workflow string     `json:"workflow"`
		State    string     `json:"state"`
		Started  time.Time  `json:"started"`
		Finished time.Time  `json:"finished"`
		Tasks    []taskJSON `json:"tasks"`
	}{rep.RunID, rep.Workflow, string(rep.State), rep.Started, rep.Finished, nil}
	for _, t := range rep.Tasks {
		tj := taskJSON{ID: t.ID, State: string(t.State), Attempts: t.Attempts, DurationS: t.Duration.Seconds(), HTTPStatus: t.HTTPStatus, Error: t.Error, Output: string(t.Output)}
		if t.ExitCode >= 0 {
			code := t.ExitCode
			tj.ExitCode = &code
		}
		out.Tasks = append(out.Tasks, tj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ⏎ ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
