package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

func cmdApply(e *env, args []string) int {
	r, files, code, ok := parseRemote(e, "apply", newFlags(e, "apply"), args)
	if !ok {
		return code
	}
	defer r.close()
	if len(files) == 0 {
		return usageError(e, "apply", "no file given")
	}
	client := cairnv1.NewWorkflowServiceClient(r.conn)
	code = ExitOK
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(e.stderr, "cairnctl apply: %v\n", err)
			code = ExitFail
			continue
		}
		ctx, cancel := r.ctx()
		resp, err := client.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: r.ns(), Yaml: string(data)})
		cancel()
		if err != nil {
			code = r.failFile(f, err)
			continue
		}
		if *r.asJSON {
			r.printJSON(resp)
			continue
		}
		what := "unchanged"
		if resp.GetCreated() {
			what = "stored"
		}
		fmt.Fprintf(e.stdout, "%s: workflow %s version %d %s\n", f, inNS(resp.GetWorkflow().GetNamespace(), resp.GetWorkflow().GetName()),
			resp.GetWorkflow().GetVersion(), what)
	}
	return code
}

// failFile reports an apply error, naming the file in validation errors.
func (r *remote) failFile(file string, err error) int {
	fmt.Fprintf(r.e.stderr, "%s: rejected\n", file)
	return r.failIn(file, err)
}

func cmdWorkflows(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "workflows", args, "list", "get")
	if !ok {
		return code
	}
	fs := newFlags(e, "workflows")
	var version *int64
	if verb == "get" {
		version = fs.Int64("version", 0, "version to get (default: the latest)")
	}
	r, pos, code, ok := parseRemote(e, "workflows", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	client := cairnv1.NewWorkflowServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	switch verb {
	case "list":
		var all []*cairnv1.Workflow
		req := &cairnv1.ListWorkflowsRequest{Namespace: r.ns()}
		for {
			resp, err := client.ListWorkflows(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			all = append(all, resp.GetWorkflows()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListWorkflowsResponse{Workflows: all})
			return ExitOK
		}
		rows := make([][]string, 0, len(all))
		for _, w := range all {
			rows = append(rows, []string{w.GetName(), fmt.Sprint(w.GetVersion()), dash(w.GetSchedule()), when(w.GetCreatedAt()), w.GetDescription()})
		}
		table(e.stdout, "NAME\tVERSION\tSCHEDULE\tUPDATED\tDESCRIPTION", rows)
	case "get":
		if len(pos) != 1 {
			return usageError(e, "workflows", "get wants one workflow name")
		}
		req := &cairnv1.GetWorkflowRequest{Namespace: r.ns(), Name: pos[0]}
		if *version != 0 {
			req.Version = version
		}
		resp, err := client.GetWorkflow(ctx, req)
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		w := resp.GetWorkflow()
		fmt.Fprintf(e.stdout, "workflow %s version %d (%s)\n", inNS(w.GetNamespace(), w.GetName()), w.GetVersion(), when(w.GetCreatedAt()))
		if w.GetDescription() != "" {
			fmt.Fprintf(e.stdout, "%s\n", w.GetDescription())
		}
		if w.GetSchedule() != "" {
			fmt.Fprintf(e.stdout, "schedule: %s %s\n", w.GetSchedule(), dash(w.GetTimezone()))
		}
		fmt.Fprintln(e.stdout)
		rows := make([][]string, 0, len(w.GetTasks()))
		for _, t := range w.GetTasks() {
			rows = append(rows, []string{t.GetId(), enumName(t.GetType(), "TASK_TYPE_"), dash(strings.Join(t.GetDependsOn(), ",")),
				strings.ToLower(enumName(t.GetTriggerRule(), "TRIGGER_RULE_")), fmt.Sprint(t.GetRetries()), dash(t.GetPool())})
		}
		table(e.stdout, "TASK\tTYPE\tDEPENDS ON\tTRIGGER\tRETRIES\tPOOL", rows)
	}
	return ExitOK
}

// runRemote is `cairnctl run WORKFLOW` against a gateway.
func runRemote(e *env, args []string) int {
	fs := newFlags(e, "run")
	params := paramsFlag{}
	fs.Var(params, "p", "set a param: -p key=value (repeatable)")
	key := fs.String("idempotency-key", "", "start at most one run per workflow with this key")
	wait := fs.Bool("wait", false, "follow the run until it ends; the exit code reflects its outcome")
	r := remoteFlags(e, "run", fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(e, "run", "want exactly one workflow name, got %d", len(pos))
	}
	if looksLikeFile(pos[0]) || !workflowNameRE.MatchString(pos[0]) {
		return usageError(e, "run", "%q is not a workflow name: to run a file in this process use --local; to run it on the cluster, `cairnctl apply` it, then run it by name", pos[0])
	}
	if err := r.dial(); err != nil {
		fmt.Fprintf(e.stderr, "cairnctl run: %v\n", err)
		return ExitUsage
	}
	defer r.close()
	client := cairnv1.NewRunServiceClient(r.conn)
	ctx, cancel := r.ctx()
	resp, err := client.StartRun(ctx, &cairnv1.StartRunRequest{Namespace: r.ns(), Workflow: pos[0], Params: params, IdempotencyKey: *key})
	cancel()
	if err != nil {
		return r.fail(err)
	}
	run := resp.GetRun()
	if !*wait {
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		note := "started"
		if resp.GetExisting() {
			note = "already exists for this idempotency key"
		}
		fmt.Fprintf(e.stdout, "run %s of %s version %d %s\n", run.GetRunId(), inNS(run.GetNamespace(), run.GetWorkflow()),
			run.GetWorkflowVersion(), note)
		return ExitOK
	}
	return r.follow(client, run.GetRunId())
}

// looksLikeFile reports whether a run argument is a workflow file rather than a name.
func looksLikeFile(arg string) bool {
	if strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && !fi.IsDir()
}

// follow watches a run until it ends, printing each task state change, then the summary.
func (r *remote) follow(client cairnv1.RunServiceClient, runID string) int {
	e := r.e
	if !*r.asJSON {
		fmt.Fprintf(e.stdout, "following run %s\n", runID)
	}
	var after int64
	for attempt := 0; ; attempt++ {
		stream, err := client.WatchRun(e.ctx, &cairnv1.WatchRunRequest{Namespace: r.ns(), RunId: runID, AfterSeq: after})
		if err != nil {
			return r.fail(err)
		}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return r.summary(client, runID)
			}
			if err != nil {
				// The gateway went away (restart, another replica): resume after the last event.
				if status.Code(err) == codes.Unavailable && attempt < 20 && e.ctx.Err() == nil {
					break
				}
				return r.fail(err)
			}
			ev := resp.GetEvent()
			after = ev.GetSeq()
			if !*r.asJSON {
				printRunEvent(e.stdout, ev)
			}
		}
	}
}

func printRunEvent(w io.Writer, ev *cairnv1.RunEvent) {
	t := "--:--:--"
	if ev.GetTime() != nil {
		t = ev.GetTime().AsTime().Local().Format("15:04:05.000")
	}
	var what string
	switch {
	case ev.GetTaskId() == "" && ev.GetRunState() != cairnv1.RunState_RUN_STATE_UNSPECIFIED:
		what = fmt.Sprintf("%-24s %s", "run", enumName(ev.GetRunState(), "RUN_STATE_"))
	case ev.GetTaskState() != cairnv1.TaskState_TASK_STATE_UNSPECIFIED:
		what = fmt.Sprintf("%-24s %s", ev.GetTaskId(), enumName(ev.GetTaskState(), "TASK_STATE_"))
		if ev.GetAttempt() > 0 {
			what += fmt.Sprintf(" (attempt %d)", ev.GetAttempt())
		}
	default:
		what = fmt.Sprintf("%-24s", dash(ev.GetTaskId()))
	}
	if ev.GetMessage() != "" {
		what += ": " + oneLine(ev.GetMessage())
	}
	fmt.Fprintf(w, "%s %s\n", t, what)
}

// summary prints the final run and returns 0 only if it succeeded.
func (r *remote) summary(client cairnv1.RunServiceClient, runID string) int {
	ctx, cancel := r.ctx()
	defer cancel()
	resp, err := client.GetRun(ctx, &cairnv1.GetRunRequest{Namespace: r.ns(), RunId: runID})
	if err != nil {
		return r.fail(err)
	}
	if *r.asJSON {
		r.printJSON(resp)
	} else {
		fmt.Fprintln(r.e.stdout)
		printRun(r.e.stdout, resp.GetRun())
	}
	if resp.GetRun().GetState() != cairnv1.RunState_RUN_STATE_SUCCEEDED {
		return ExitFail
	}
	return ExitOK
}

func printRun(w io.Writer, run *cairnv1.Run) {
	fmt.Fprintf(w, "run %s of %s version %d: %s\n", run.GetRunId(), inNS(run.GetNamespace(), run.GetWorkflow()), run.GetWorkflowVersion(),
		enumName(run.GetState(), "RUN_STATE_"))
	fmt.Fprintf(w, "created %s, started %s, finished %s\n", when(run.GetCreatedAt()), when(run.GetStartedAt()), when(run.GetFinishedAt()))
	if run.GetReason() != "" {
		fmt.Fprintf(w, "reason: %s\n", run.GetReason())
	}
	if len(run.GetParams()) > 0 {
		keys := make([]string, 0, len(run.GetParams()))
		for k := range run.GetParams() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + run.GetParams()[k]
		}
		fmt.Fprintf(w, "params: %s\n", strings.Join(keys, " "))
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(run.GetTasks()))
	for _, t := range run.GetTasks() {
		rows = append(rows, []string{t.GetTaskId(), enumName(t.GetState(), "TASK_STATE_"),
			fmt.Sprintf("%d/%d", t.GetAttempt(), t.GetMaxAttempts()), dash(t.GetWorkerId()), dash(oneLine(t.GetLastError()))})
	}
	table(w, "TASK\tSTATE\tATTEMPT\tWORKER\tLAST ERROR", rows)
}

func cmdRuns(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "runs", args, "list", "get", "cancel", "retry", "watch")
	if !ok {
		return code
	}
	fs := newFlags(e, "runs")
	var workflow, state, reason *string
	switch verb {
	case "list":
		workflow = fs.String("workflow", "", "only runs of this workflow")
		state = fs.String("state", "", "only runs in this state (pending, running, succeeded, failed, cancelled)")
	case "cancel":
		reason = fs.String("reason", "", "why the run is cancelled")
	}
	r, pos, code, ok := parseRemote(e, "runs", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	client := cairnv1.NewRunServiceClient(r.conn)
	if verb != "list" && len(pos) != 1 {
		return usageError(e, "runs", "%s wants one run ID", verb)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	switch verb {
	case "list":
		req := &cairnv1.ListRunsRequest{Namespace: r.ns(), Workflow: *workflow}
		if *state != "" {
			v, ok := cairnv1.RunState_value["RUN_STATE_"+strings.ToUpper(*state)]
			if !ok {
				return usageError(e, "runs", "unknown --state %q", *state)
			}
			req.State = cairnv1.RunState(v)
		}
		var all []*cairnv1.Run
		for {
			resp, err := client.ListRuns(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			all = append(all, resp.GetRuns()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListRunsResponse{Runs: all})
			return ExitOK
		}
		rows := make([][]string, 0, len(all))
		for _, run := range all {
			rows = append(rows, []string{run.GetRunId(), run.GetWorkflow(), fmt.Sprint(run.GetWorkflowVersion()),
				enumName(run.GetState(), "RUN_STATE_"), when(run.GetCreatedAt()), when(run.GetFinishedAt())})
		}
		table(e.stdout, "RUN\tWORKFLOW\tVERSION\tSTATE\tCREATED\tFINISHED", rows)
		return ExitOK
	case "watch":
		cancel()
		return r.follow(client, pos[0])
	}
	var run *cairnv1.Run
	var err error
	switch verb {
	case "get":
		var resp *cairnv1.GetRunResponse
		if resp, err = client.GetRun(ctx, &cairnv1.GetRunRequest{Namespace: r.ns(), RunId: pos[0]}); err == nil {
			run = resp.GetRun()
		}
	case "cancel":
		var resp *cairnv1.CancelRunResponse
		if resp, err = client.CancelRun(ctx, &cairnv1.CancelRunRequest{Namespace: r.ns(), RunId: pos[0], Reason: *reason}); err == nil {
			run = resp.GetRun()
		}
	case "retry":
		var resp *cairnv1.RetryRunResponse
		if resp, err = client.RetryRun(ctx, &cairnv1.RetryRunRequest{Namespace: r.ns(), RunId: pos[0]}); err == nil {
			run = resp.GetRun()
		}
	}
	if err != nil {
		return r.fail(err)
	}
	if *r.asJSON {
		r.printJSON(run)
	} else {
		printRun(e.stdout, run)
	}
	return ExitOK
}

func cmdAttempts(e *env, args []string) int {
	r, pos, code, ok := parseRemote(e, "attempts", newFlags(e, "attempts"), args)
	if !ok {
		return code
	}
	defer r.close()
	if len(pos) != 2 {
		return usageError(e, "attempts", "want a run ID and a task ID")
	}
	client := cairnv1.NewRunServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	var all []*cairnv1.Attempt
	req := &cairnv1.ListAttemptsRequest{Namespace: r.ns(), RunId: pos[0], TaskId: pos[1]}
	for {
		resp, err := client.ListAttempts(ctx, req)
		if err != nil {
			return r.fail(err)
		}
		all = append(all, resp.GetAttempts()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if *r.asJSON {
		r.printJSON(&cairnv1.ListAttemptsResponse{Attempts: all})
		return ExitOK
	}
	if len(all) == 0 {
		fmt.Fprintf(e.stdout, "task %s of run %s has no attempts yet\n", pos[1], pos[0])
	}
	for _, a := range all {
		result := enumName(a.GetState(), "ATTEMPT_STATE_")
		if a.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			result += " (" + strings.ToLower(enumName(a.GetFailureKind(), "FAILURE_KIND_")) + ")"
		}
		if a.ExitCode != nil {
			result += fmt.Sprintf(", exit %d", a.GetExitCode())
		}
		if a.HttpStatus != nil {
			result += fmt.Sprintf(", HTTP %d", a.GetHttpStatus())
		}
		fmt.Fprintf(e.stdout, "attempt %d on %s: %s, started %s, finished %s\n", a.GetAttempt(), dash(a.GetWorkerId()), result, when(a.GetStartedAt()), when(a.GetFinishedAt()))
		if a.GetError() != "" {
			fmt.Fprintf(e.stdout, "  error: %s\n", a.GetError())
		}
		if a.GetOutput() != "" {
			trunc := ""
			if a.GetOutputTruncated() {
				trunc = " (truncated)"
			}
			fmt.Fprintf(e.stdout, "  output%s:\n", trunc)
			for _, line := range strings.Split(strings.TrimRight(a.GetOutput(), "\n"), "\n") {
				fmt.Fprintf(e.stdout, "    %s\n", line)
			}
		}
	}
	return ExitOK
}

func cmdDLQ(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "dlq", args, "list", "get", "replay")
	if !ok {
		return code
	}
	fs := newFlags(e, "dlq")
	var workflow, runID *string
	if verb == "list" {
		workflow = fs.String("workflow", "", "only entries of this workflow")
		runID = fs.String("run", "", "only entries of this run")
	}
	r, pos, code, ok := parseRemote(e, "dlq", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	client := cairnv1.NewDeadLetterServiceClient(r.conn)
	if verb != "list" && len(pos) != 1 {
		return usageError(e, "dlq", "%s wants one dead-letter ID", verb)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	switch verb {
	case "list":
		var all []*cairnv1.DeadLetter
		req := &cairnv1.ListDeadLettersRequest{Namespace: r.ns(), Workflow: *workflow, RunId: *runID}
		for {
			resp, err := client.ListDeadLetters(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			all = append(all, resp.GetDeadLetters()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListDeadLettersResponse{DeadLetters: all})
			return ExitOK
		}
		rows := make([][]string, 0, len(all))
		for _, d := range all {
			rows = append(rows, []string{d.GetId(), d.GetWorkflow(), d.GetRunId(), d.GetTaskId(), fmt.Sprint(d.GetAttemptsMade()), when(d.GetCreatedAt()), dash(oneLine(d.GetLastError()))})
		}
		table(e.stdout, "ID\tWORKFLOW\tRUN\tTASK\tATTEMPTS\tCREATED\tLAST ERROR", rows)
	case "get":
		resp, err := client.GetDeadLetter(ctx, &cairnv1.GetDeadLetterRequest{Namespace: r.ns(), Id: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		d := resp.GetDeadLetter()
		fmt.Fprintf(e.stdout, "dead letter %s: task %s of run %s (%s version %d), %d attempts, since %s\n",
			d.GetId(), d.GetTaskId(), d.GetRunId(), inNS(d.GetNamespace(), d.GetWorkflow()), d.GetWorkflowVersion(), d.GetAttemptsMade(), when(d.GetCreatedAt()))
		rows := make([][]string, 0, len(d.GetAttempts()))
		for _, a := range d.GetAttempts() {
			rows = append(rows, []string{fmt.Sprint(a.GetAttempt()), dash(a.GetWorkerId()), strings.ToLower(enumName(a.GetFailureKind(), "FAILURE_KIND_")), dash(oneLine(a.GetError()))})
		}
		fmt.Fprintln(e.stdout)
		table(e.stdout, "ATTEMPT\tWORKER\tFAILURE\tERROR", rows)
	case "replay":
		resp, err := client.ReplayDeadLetter(ctx, &cairnv1.ReplayDeadLetterRequest{Namespace: r.ns(), Id: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		printRun(e.stdout, resp.GetRun())
	}
	return ExitOK
}

func cmdWorkers(e *env, args []string) int {
	fs := newFlags(e, "workers")
	pool := fs.String("pool", "", "only workers of this pool")
	r, pos, code, ok := parseRemote(e, "workers", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	if len(pos) != 0 {
		return usageError(e, "workers", "takes no arguments")
	}
	client := cairnv1.NewClusterServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	var all []*cairnv1.Worker
	known := true // every page carried the leader's view of the load
	// Large pages: each page asks the leader for the load once (up to 2 s during a failover).
	req := &cairnv1.ListWorkersRequest{Pool: *pool, PageSize: 1000}
	for {
		resp, err := client.ListWorkers(ctx, req)
		if err != nil {
			return r.fail(err)
		}
		all = append(all, resp.GetWorkers()...)
		known = known && (resp.GetLoadKnown() || len(resp.GetWorkers()) == 0)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if *r.asJSON {
		r.printJSON(&cairnv1.ListWorkersResponse{Workers: all, LoadKnown: known})
		return ExitOK
	}
	rows := make([][]string, 0, len(all))
	for _, w := range all {
		labels := make([]string, 0, len(w.GetLabels()))
		for k, v := range w.GetLabels() {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		state, running, queued := workerState(w, known), "-", "-"
		if known && w.GetConnected() {
			running, queued = fmt.Sprintf("%d/%d", w.GetRunning(), w.GetCapacity()), fmt.Sprint(w.GetQueued())
		}
		rows = append(rows, []string{w.GetId(), w.GetAddress(), dash(w.GetPool()), state, running, queued,
			dash(strings.Join(labels, ",")), dash(w.GetVersion()), when(w.GetStartedAt()), when(w.GetLastSeenAt())})
	}
	table(e.stdout, "ID\tADDRESS\tPOOL\tSTATE\tRUNNING\tQUEUED\tLABELS\tVERSION\tSTARTED\tLAST SEEN", rows)
	if !known && len(all) > 0 {
		fmt.Fprintln(e.stderr, "cairnctl workers: load unknown: no scheduler leader answered; the list comes from etcd only")
	}
	return ExitOK
}

// workerState is a worker's STATE column: how the leader sees it.
func workerState(w *cairnv1.Worker, known bool) string {
	switch {
	case !known:
		return "unknown"
	case !w.GetConnected():
		return "unattached" // registered in etcd, no stream to the leader (starting, reconnecting)
	case w.GetDraining():
		return "draining"
	}
	return "connected"
}

func cmdCluster(e *env, args []string) int {
	r, pos, code, ok := parseRemote(e, "cluster", newFlags(e, "cluster"), args)
	if !ok {
		return code
	}
	defer r.close()
	if len(pos) != 0 {
		return usageError(e, "cluster", "takes no arguments")
	}
	ctx, cancel := r.ctx()
	defer cancel()
	resp, err := cairnv1.NewClusterServiceClient(r.conn).GetCluster(ctx, &cairnv1.GetClusterRequest{})
	if err != nil {
		return r.fail(err)
	}
	if *r.asJSON {
		r.printJSON(resp)
		return ExitOK
	}
	c := resp.GetCluster()
	if c.GetLeaderId() == "" {
		fmt.Fprintln(e.stdout, "leader: none (election in progress or no scheduler running)")
	} else {
		fmt.Fprintf(e.stdout, "leader: %s at %s, epoch %d\n", c.GetLeaderId(), c.GetLeaderAddress(), c.GetEpoch())
	}
	fmt.Fprintf(e.stdout, "workers: %d live\n\n", c.GetWorkers())
	rows := make([][]string, 0, len(c.GetSchedulers()))
	for _, s := range c.GetSchedulers() {
		role := "follower"
		if s.GetLeader() {
			role = "leader"
		}
		rows = append(rows, []string{s.GetId(), s.GetAddress(), role})
	}
	table(e.stdout, "SCHEDULER\tADDRESS\tROLE", rows)
	return ExitOK
}
