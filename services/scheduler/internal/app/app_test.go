package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOGS") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testConfig(t *testing.T, dbURL string, etcd []string, id string) Config {
	return Config{
		DatabaseURL: dbURL, EtcdEndpoints: etcd, EtcdPrefix: "/cairn/",
		GRPCAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0", ID: id,
		// Long enough that a hand-over that waited for the TTL would fail the resign test.
		SessionTTL: 30 * time.Second,
		AdoptGrace: 2 * time.Second, AttemptGrace: 5 * time.Second, ShutdownTimeout: 5 * time.Second,
		Migrate: true, Logger: testLogger(t), CronInterval: 100 * time.Millisecond,
		Insecure: true, // everything is on loopback; TLS is tested in authz and tests/e2e
	}
}

func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("stop %s: %v", cfg.ID, err)
		}
	})
	return a
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want code %v", st.Code(), err, code)
	}
	if !strings.Contains(st.Message(), contains) {
		t.Fatalf("message %q does not contain %q", st.Message(), contains)
	}
	return st
}

const workflowYAML = `name: e2e
params: {day: "2026-01-01"}
tasks:
  - id: extract
    type: shell
    command: ["echo", "{{ .params.day }}"]
  - id: load
    type: noop
    depends_on: [extract]
`

func TestClusterEndToEnd(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	etcd := etcdtest.Start(t)
	a1 := startApp(t, testConfig(t, dbURL, etcd.Endpoints(), "s1"))
	a2 := startApp(t, testConfig(t, dbURL, etcd.Endpoints(), "s2"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	waitFor(t, 15*time.Second, "one leader", func() bool { return a1.Leading() != a2.Leading() })
	leader, follower := a1, a2
	if a2.Leading() {
		leader, follower = a2, a1
	}
	time.Sleep(200 * time.Millisecond)
	if !leader.Leading() || follower.Leading() {
		t.Fatalf("leadership not stable: %v %v", leader.Leading(), follower.Leading())
	}

	// The follower sends everyone to the leader.
	waitFor(t, 5*time.Second, "the follower to observe the leader", func() bool {
		l, ok := follower.state.Observed()
		return ok && l.Value == leader.AdvertiseAddr()
	})
	fsched := cairnv1.NewSchedulerServiceClient(dial(t, follower.GRPCAddr()))
	_, err := fsched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: workflowYAML})
	wantCode(t, err, codes.Unavailable, leader.AdvertiseAddr())
	fstream, err := cairnv1.NewWorkerServiceClient(dial(t, follower.GRPCAddr())).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = fstream.Send(hello("w0", 1))
	_, err = fstream.Recv()
	wantCode(t, err, codes.Unavailable, leader.AdvertiseAddr())

	sched := cairnv1.NewSchedulerServiceClient(dial(t, leader.GRPCAddr()))

	// Bad YAML: INVALID_ARGUMENT with one ValidationError per problem, with positions.
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: "name: bad\ntasks:\n  - id: a\n    type: shell\n    comand: [x]\n"})
	st := wantCode(t, err, codes.InvalidArgument, "invalid")
	var verrs []*cairnv1.ValidationError
	for _, d := range st.Details() {
		if v, ok := d.(*cairnv1.ValidationError); ok {
			verrs = append(verrs, v)
		}
	}
	if len(verrs) == 0 {
		t.Fatalf("no ValidationError details in %v", st.Details())
	}
	found := false
	for _, v := range verrs {
		if v.GetLine() == 5 && v.GetColumn() > 0 && strings.Contains(v.GetMessage(), "comand") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no detail at line 5 naming the unknown field: %v", verrs)
	}
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{})
	wantCode(t, err, codes.InvalidArgument, "yaml")

	applied, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: workflowYAML})
	if err != nil {
		t.Fatal(err)
	}
	if !applied.GetCreated() || applied.GetWorkflow().GetVersion() != 1 || len(applied.GetWorkflow().GetTasks()) != 2 {
		t.Fatalf("apply: %v", applied)
	}
	again, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: workflowYAML})
	if err != nil || again.GetCreated() || again.GetWorkflow().GetVersion() != 1 {
		t.Fatalf("re-apply: %v, %v", again, err)
	}

	// StartRun: validation, then idempotency.
	_, err = sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "e2e", Params: map[string]string{"dya": "x"}})
	wantCode(t, err, codes.InvalidArgument, "dya")
	_, err = sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "nope"})
	wantCode(t, err, codes.NotFound, "nope")
	started, err := sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "e2e", IdempotencyKey: "k1",
		Params: map[string]string{"day": "2026-02-03"}})
	if err != nil {
		t.Fatal(err)
	}
	if started.GetExisting() || started.GetRun().GetTrigger() != cairnv1.RunTrigger_RUN_TRIGGER_API {
		t.Fatalf("first start: %v", started)
	}
	dup, err := sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "e2e", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if !dup.GetExisting() || dup.GetRun().GetRunId() != started.GetRun().GetRunId() {
		t.Fatalf("second start with the same key: existing=%v run %s, want existing=true run %s",
			dup.GetExisting(), dup.GetRun().GetRunId(), started.GetRun().GetRunId())
	}

	// Worker input validation.
	wclient := cairnv1.NewWorkerServiceClient(dial(t, leader.GRPCAddr()))
	for _, c := range []struct {
		name  string
		first *cairnv1.WorkerMessage
		want  string
	}{
		{"credits first", &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Credits{Credits: &cairnv1.WorkerCredits{FreeSlots: 1}}}, "first message must be hello"},
		{"zero capacity", hello("wx", 0), "hello.capacity"},
		{"no id", hello("", 1), "hello.worker_id"},
		{"zero token", &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Hello{Hello: &cairnv1.WorkerHello{WorkerId: "wx", Capacity: 1,
			Running: []*cairnv1.RunningAttempt{{AttemptId: "a"}}}}}, "hello.running[0].fencing_token"},
	} {
		s, err := wclient.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Send(c.first)
		_, err = s.Recv()
		t.Run(c.name, func(t *testing.T) { wantCode(t, err, codes.InvalidArgument, c.want) })
	}

	// A test worker runs the run to completion.
	reg, err := membership.Register(ctx, etcd.Client(t), membership.Info{ID: "w1", Address: "127.0.0.1:1", Capacity: 2,
		Started: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	stream, err := wclient.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(hello("w1", 2)); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil || msg.GetWelcome() == nil || msg.GetWelcome().GetEpoch() != leader.Epoch() {
		t.Fatalf("want welcome with epoch %d, got %v, %v", leader.Epoch(), msg, err)
	}
	send(t, stream, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Credits{Credits: &cairnv1.WorkerCredits{FreeSlots: 2}}})
	var ran []string
	for acks := 0; acks < 2; {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("worker stream: %v (ran %v)", err, ran)
		}
		switch {
		case msg.GetAssignment() != nil:
			as := msg.GetAssignment()
			ran = append(ran, as.GetTaskId())
			if as.GetTaskId() == "extract" && !slices.Contains(as.GetSpec().GetShell().GetArgv(), "2026-02-03") {
				t.Errorf("extract's argv %v lacks the run's param", as.GetSpec().GetShell().GetArgv())
			}
			send(t, stream, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Started{Started: &cairnv1.AttemptStarted{
				AttemptId: as.GetAttemptId(), FencingToken: as.GetFencingToken()}}})
			send(t, stream, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Result{Result: &cairnv1.AttemptResult{
				ResultId: uuid.NewString(), AttemptId: as.GetAttemptId(), RunId: as.GetRunId(), TaskId: as.GetTaskId(),
				FencingToken: as.GetFencingToken(), Outcome: cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED, Output: []byte("ok\n")}}})
			send(t, stream, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Credits{Credits: &cairnv1.WorkerCredits{FreeSlots: 1}}})
		case msg.GetResultAck() != nil:
			if !msg.GetResultAck().GetAccepted() {
				t.Fatalf("result not accepted: %v", msg.GetResultAck())
			}
			acks++
		}
	}
	if !slices.Equal(ran, []string{"extract", "load"}) {
		t.Fatalf("ran %v, want extract then load", ran)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st2 := store.New(pool)
	runID := uuid.MustParse(started.GetRun().GetRunId())
	waitFor(t, 10*time.Second, "the run to succeed in PostgreSQL", func() bool {
		d, err := st2.GetRun(ctx, model.DefaultNamespace, runID)
		return err == nil && d.Run.State == model.RunSucceeded
	})

	// ApplyWorkflow keeps the schedule row in line with the YAML.
	const nightly = "name: nightly\nschedule: \"0 2 * * *\"\ntasks:\n  - id: a\n    type: noop\n"
	if _, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: nightly}); err != nil {
		t.Fatal(err)
	}
	sc, err := st2.GetSchedule(ctx, model.DefaultNamespace, "nightly")
	if err != nil || sc.Cron != "0 2 * * *" || sc.NextFireAt.Hour() != 2 || !sc.NextFireAt.After(time.Now()) {
		t.Fatalf("schedule after apply: %+v, %v", sc, err)
	}
	if _, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: strings.Replace(nightly, "schedule: \"0 2 * * *\"\n", "", 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.GetSchedule(ctx, model.DefaultNamespace, "nightly"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("schedule after removing it from the YAML: %v, want not found", err)
	}

	// Cancel: finished run, unknown run, malformed id.
	_, err = sched.CancelRun(ctx, &cairnv1.CancelRunRequest{RunId: runID.String()})
	wantCode(t, err, codes.FailedPrecondition, "already ended")
	_, err = sched.CancelRun(ctx, &cairnv1.CancelRunRequest{RunId: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "")
	_, err = sched.CancelRun(ctx, &cairnv1.CancelRunRequest{RunId: "x"})
	wantCode(t, err, codes.InvalidArgument, "run_id")
	// Retry, replay and purge reach the engine (their semantics are tested there).
	_, err = sched.RetryRun(ctx, &cairnv1.RetryRunRequest{RunId: runID.String()})
	wantCode(t, err, codes.FailedPrecondition, "no failed")
	_, err = sched.RetryRun(ctx, &cairnv1.RetryRunRequest{RunId: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "")
	_, err = sched.RetryRun(ctx, &cairnv1.RetryRunRequest{RunId: "x"})
	wantCode(t, err, codes.InvalidArgument, "run_id")
	_, err = sched.ReplayDeadLetter(ctx, &cairnv1.ReplayDeadLetterRequest{Id: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "dead letter")
	_, err = sched.PurgeDeadLetter(ctx, &cairnv1.PurgeDeadLetterRequest{Id: uuid.NewString()})
	wantCode(t, err, codes.NotFound, "dead letter")
	_, err = sched.ReplayDeadLetter(ctx, &cairnv1.ReplayDeadLetterRequest{Id: "nope"})
	wantCode(t, err, codes.InvalidArgument, "id")

	// Ops endpoints.
	body := get(t, "http://"+leader.OpsAddr()+"/metrics", 200)
	for _, m := range []string{"cairn_runs_finished_total", "cairn_task_attempts_total", "cairn_leader", "cairn_leader_epoch",
		"cairn_workers_connected", "cairn_commit_batch_groups", "cairn_dispatch_queue_wait_seconds", "rpc_server_call_duration"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	get(t, "http://"+follower.OpsAddr()+"/readyz", 200)
	get(t, "http://"+leader.OpsAddr()+"/healthz", 200)

	// Resign hands over at once (the session TTL is 30s), to a higher epoch.
	oldEpoch := leader.Epoch()
	if err := leader.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantCode(t, err, codes.Unavailable, "")
	waitFor(t, 10*time.Second, "the follower to take over", follower.Leading)
	if follower.Epoch() <= oldEpoch {
		t.Fatalf("new epoch %d is not above %d", follower.Epoch(), oldEpoch)
	}
	nsched := cairnv1.NewSchedulerServiceClient(dial(t, follower.GRPCAddr()))
	again2, err := nsched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "e2e", IdempotencyKey: "k1"})
	if err != nil || !again2.GetExisting() || again2.GetRun().GetRunId() != runID.String() {
		t.Fatalf("start on the new leader with the same key: %v, %v", again2, err)
	}
	waitFor(t, 5*time.Second, "the old leader to point at the new one", func() bool {
		_, err := sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "e2e", IdempotencyKey: "k1"})
		st, _ := status.FromError(err)
		return st.Code() == codes.Unavailable && strings.Contains(st.Message(), follower.AdvertiseAddr())
	})
}

func hello(id string, capacity int32) *cairnv1.WorkerMessage {
	return &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Hello{Hello: &cairnv1.WorkerHello{WorkerId: id, Capacity: capacity}}}
}

func send(t *testing.T, s cairnv1.WorkerService_ConnectClient, m *cairnv1.WorkerMessage) {
	t.Helper()
	if err := s.Send(m); err != nil {
		t.Fatalf("send %v: %v", m, err)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

func TestStartGivesUpWhenEtcdStaysDown(t *testing.T) {
	cfg := testConfig(t, pgtest.NewDatabase(t), []string{"http://127.0.0.1:1"}, "lonely")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "connect to etcd") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with etcd down: %v, want a connect-to-etcd deadline error", err)
	}
	if err := Run(ctx, cfg); err != nil {
		t.Fatalf("Run with an ended context is a clean exit, got %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	var help strings.Builder
	_, err := ParseFlags([]string{"--help"}, func(string) (string, bool) { return "", false }, &help)
	if err == nil {
		t.Fatal("--help: no error")
	}
	for _, v := range []string{"CAIRN_DATABASE_URL", "CAIRN_ETCD_ENDPOINTS", "CAIRN_ETCD_PREFIX", "CAIRN_GRPC_ADDR",
		"CAIRN_ADVERTISE_ADDR", "CAIRN_OPS_ADDR", "CAIRN_SCHEDULER_ID", "CAIRN_SESSION_TTL", "CAIRN_ADOPT_GRACE",
		"CAIRN_ATTEMPT_GRACE", "CAIRN_MIGRATE", "CAIRN_LOG_FORMAT", "CAIRN_LOG_LEVEL", "CAIRN_OTLP_ENDPOINT",
		"CAIRN_TLS_CERT", "CAIRN_TLS_KEY", "CAIRN_TLS_CLIENT_CA", "CAIRN_SCHEDULER_SERVER_NAME", "CAIRN_INSECURE",
		"CAIRN_ETCD_CA", "CAIRN_ETCD_CERT", "CAIRN_ETCD_KEY", "CAIRN_ETCD_USERNAME", "CAIRN_ETCD_PASSWORD_FILE"} {
		if !strings.Contains(help.String(), v) {
			t.Errorf("--help does not list %s", v)
		}
	}

	env := map[string]string{"CAIRN_DATABASE_URL": "postgres://u@127.0.0.1/db", "CAIRN_SESSION_TTL": "7s",
		"CAIRN_ETCD_ENDPOINTS": "http://127.0.0.1:2379, http://localhost:2379", "CAIRN_INSECURE": "1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := ParseFlags([]string{"--session-ttl", "9s"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SessionTTL != 9*time.Second || !slices.Equal(cfg.EtcdEndpoints, []string{"http://127.0.0.1:2379", "http://localhost:2379"}) ||
		cfg.GRPCAddr != "127.0.0.1:7071" || cfg.OpsAddr != "127.0.0.1:9091" || !cfg.Migrate || cfg.ID == "" ||
		cfg.AdoptGrace != 10*time.Second || cfg.AttemptGrace != 30*time.Second {
		t.Fatalf("config %+v", cfg)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "CAIRN_DATABASE_URL) is required"},
		{[]string{"--database-url", "postgres://x@h/d", "--etcd-prefix", "/cairn"}, "CAIRN_ETCD_PREFIX"},
		{[]string{"--database-url", "postgres://x@h/d", "--grpc-addr", "nope"}, "CAIRN_GRPC_ADDR"},
		{[]string{"--database-url", "postgres://x@h/d", "--session-ttl", "100ms"}, "CAIRN_SESSION_TTL"},
		{[]string{"--database-url", "postgres://x@h/d", "--log-format", "xml"}, "CAIRN_LOG_FORMAT"},
		{[]string{"--database-url", "postgres://x@h/d", "--etcd-endpoints", "ftp://x"}, "CAIRN_ETCD_ENDPOINTS"},
		{[]string{"--database-url", "postgres://x@h/d", "stray"}, "unexpected arguments"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d"}, "internal TLS is not configured: set --tls-cert (CAIRN_TLS_CERT), --tls-key (CAIRN_TLS_KEY) and --tls-client-ca (CAIRN_TLS_CLIENT_CA)"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d"}, "or --insecure (CAIRN_INSECURE)"},
		{[]string{"--database-url", "postgres://x@db.example/d", "--insecure"}, "--database-url (CAIRN_DATABASE_URL) host=db.example"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d", "--insecure", "--grpc-addr", "0.0.0.0:7071"}, "--grpc-addr (CAIRN_GRPC_ADDR)=0.0.0.0:7071"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d", "--insecure", "--etcd-endpoints", "http://etcd:2379"}, "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)=http://etcd:2379"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d", "--insecure", "--tls-cert", "c.pem"}, "exclude each other"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d", "--tls-cert", "c.pem"}, "missing --tls-key (CAIRN_TLS_KEY), --tls-client-ca (CAIRN_TLS_CLIENT_CA)"},
		{[]string{"--database-url", "postgres://x@127.0.0.1/d", "--insecure", "--etcd-cert", "c.pem"}, "--etcd-key (CAIRN_ETCD_KEY)"},
	} {
		_, err := ParseFlags(c.args, func(string) (string, bool) { return "", false }, io.Discard)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFlags(%q) = %v, want a config error naming %s", c.args, err, c.want)
		}
	}
}

// TestTLSCertificateChecks: a replica refuses, at start-up, a certificate its clients would
// refuse: not a scheduler identity, or without the name they verify.
func TestTLSCertificateChecks(t *testing.T) {
	d, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "tls"), tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(base string, req tlsconf.CertRequest) (string, string) {
		c, k, err := d.Issue(base, req)
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	good, goodKey := issue("s", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s1"}, DNSNames: []string{"cairn-scheduler"}})
	worker, workerKey := issue("w", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleWorker, Name: "w1"}})
	noName, noNameKey := issue("n", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s2"}, DNSNames: []string{"other"}})
	for _, tc := range []struct {
		cert, key, want string
	}{
		{good, goodKey, ""},
		{worker, workerKey, "must name a scheduler"},
		{noName, noNameKey, `does not carry the DNS name "cairn-scheduler"`},
	} {
		a := &App{cfg: Config{TLSCert: tc.cert, TLSKey: tc.key, TLSClientCA: d.CAFile(), SchedulerServerName: "cairn-scheduler"},
			log: testLogger(t)}
		creds, err := a.transportCredentials()
		switch {
		case tc.want == "" && (err != nil || creds == nil):
			t.Errorf("%s: %v", tc.cert, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a configuration error naming %q", tc.cert, err, tc.want)
		}
	}
}
