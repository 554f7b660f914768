package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/secretbox"
	"github.com/cairn-io/cairn/pkg/store"
)

func keyLine(t *testing.T, id string) string {
	t.Helper()
	l, err := secretbox.NewKeyLine(id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The keyring comes from --secrets-keyring-file (CAIRN_SECRETS_KEYRING_FILE) or from
// CAIRN_SECRETS_KEYRING, never from a flag holding the keys; a bad one is a configuration
// error naming the setting, and never quoting key material.
func TestKeyringConfig(t *testing.T) {
	dir := t.TempDir()
	good := keyLine(t, "k2") + "\n" + keyLine(t, "k1") + "\n"
	goodFile := filepath.Join(dir, "keyring")
	if err := os.WriteFile(goodFile, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := "k1:" + strings.Repeat("QUJD", 10) + "\n" // 30 bytes
	badFile := filepath.Join(dir, "bad")
	if err := os.WriteFile(badFile, []byte(badKey), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(env map[string]string, args ...string) (Config, error) {
		env["CAIRN_DATABASE_URL"] = "postgres://u@127.0.0.1/db"
		env["CAIRN_INSECURE"] = "true" // TLS is not what this test is about
		return ParseFlags(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	}

	cfg, err := parse(map[string]string{}, "--secrets-keyring-file", goodFile)
	if err != nil || cfg.Keyring == nil || cfg.Keyring.Active() != "k2" || cfg.KeyringFileLoose() {
		t.Fatalf("keyring file: %v %v", cfg.Keyring, err)
	}
	cfg, err = parse(map[string]string{KeyringFileEnv: goodFile})
	if err != nil || cfg.Keyring == nil {
		t.Fatalf("keyring file from the environment: %v", err)
	}
	cfg, err = parse(map[string]string{KeyringEnv: strings.ReplaceAll(strings.TrimSpace(good), "\n", ",")})
	if err != nil || cfg.Keyring == nil || len(cfg.Keyring.IDs()) != 2 {
		t.Fatalf("keyring from %s: %v", KeyringEnv, err)
	}
	cfg, err = parse(map[string]string{})
	if err != nil || cfg.Keyring != nil {
		t.Fatalf("no keyring: %v %v", cfg.Keyring, err)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, []string{"--secrets-keyring-file", badFile}, "--secrets-keyring-file (CAIRN_SECRETS_KEYRING_FILE)"},
		{map[string]string{}, []string{"--secrets-keyring-file", filepath.Join(dir, "missing")}, "--secrets-keyring-file"},
		{map[string]string{KeyringEnv: badKey}, nil, "CAIRN_SECRETS_KEYRING: "},
		{map[string]string{KeyringEnv: good}, []string{"--secrets-keyring-file", goodFile}, "both set"},
	} {
		_, err := parse(c.env, c.args...)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %q: %v, want a config error naming %s", c.env, c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "QUJD") {
			t.Errorf("the error quotes key material: %v", err)
		}
	}
	cfg, err = parse(map[string]string{}, "--secrets-keyring-file", goodFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(goodFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if !cfg.KeyringFileLoose() {
		t.Error("a keyring file readable by others is not reported")
	}
}

// The leader's side of SecretService: it seals what it stores, refuses values it cannot mask
// without repeating them, checks a workflow's secret references at apply time (an unknown
// one is INVALID_ARGUMENT naming it, its task and its line), and counts secrets when asked
// to delete their namespace. Without a keyring, every secret mutation and every workflow
// that references a secret is FAILED_PRECONDITION naming the setting.
func TestSchedulerServiceSecrets(t *testing.T) {
	etcd := etcdtest.Start(t)
	keyring, err := secretbox.Open([]byte(keyLine(t, "k1")))
	if err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.NewDatabase(t)
	cfg := testConfig(t, dbURL, etcd.Endpoints(), "s1")
	cfg.Keyring = keyring
	a := startApp(t, cfg)
	waitFor(t, 15*time.Second, "leadership", a.Leading)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sched := cairnv1.NewSchedulerServiceClient(dial(t, a.GRPCAddr()))
	const value = "s3cr3t-value-0123"

	var set *cairnv1.SetSecretResponse
	waitFor(t, 10*time.Second, "the engine to accept calls", func() bool {
		set, err = sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "tok", Value: value})
		return codeOf(err) != codes.Unavailable
	})
	if err != nil || !set.GetCreated() || set.GetSecret().GetKeyId() != "k1" || strings.Contains(set.String(), value) {
		t.Fatalf("set: %v %v", set, err)
	}
	st := store.New(a.pool.Load())
	sealed, err := st.GetSealedSecrets(ctx, "default", []string{"tok"})
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := keyring.Unseal("default", "tok", sealed["tok"]); err != nil || string(pt) != value {
		t.Fatalf("stored value: %q %v", pt, err)
	}
	for _, c := range []struct {
		req  *cairnv1.SetSecretRequest
		want string
	}{
		{&cairnv1.SetSecretRequest{Name: "tok", Value: "s3c"}, "value is 3 bytes long"},
		{&cairnv1.SetSecretRequest{Name: "tok", Value: "s3cr3t\x00"}, "NUL"},
		{&cairnv1.SetSecretRequest{Name: "Tok", Value: value}, "name"},
		{&cairnv1.SetSecretRequest{Value: value}, "name is empty"},
	} {
		_, err := sched.SetSecret(ctx, c.req)
		st := wantCode(t, err, codes.InvalidArgument, c.want)
		if strings.Contains(st.Message(), "s3c") {
			t.Errorf("the refusal repeats the value: %s", st.Message())
		}
	}
	_, err = sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Namespace: "nope", Name: "tok", Value: value})
	wantCode(t, err, codes.NotFound, "namespace nope")

	// Apply-time check.
	yaml := "name: uses\ntasks:\n  - {id: a, type: noop}\n  - id: b\n    type: shell\n    command: [env]\n" +
		"    env: {T: '{{ secret \"tok\" }}', U: '{{ secret \"other\" }}'}\n"
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: yaml})
	s := wantCode(t, err, codes.InvalidArgument, `secret "other" is not defined in namespace default`)
	if !strings.Contains(s.Message(), `line 4, column 5: task "b"`) {
		t.Errorf("the refusal does not name the task and its position: %s", s.Message())
	}
	if len(s.Details()) != 1 || s.Details()[0].(*cairnv1.ValidationError).GetTaskId() != "b" {
		t.Errorf("details %v", s.Details())
	}
	if _, err := sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "other", Value: value}); err != nil {
		t.Fatal(err)
	}
	if _, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: yaml}); err != nil {
		t.Fatalf("apply once both secrets exist: %v", err)
	}
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Namespace: "nope", Yaml: yaml})
	wantCode(t, err, codes.NotFound, "namespace nope")

	// A namespace holding a secret is not empty.
	if _, err := sched.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: "team-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Namespace: "team-a", Name: "tok", Value: value}); err != nil {
		t.Fatal(err)
	}
	_, err = sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "team-a"})
	wantCode(t, err, codes.FailedPrecondition, "1 secret")
	if _, err := sched.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Namespace: "team-a", Name: "tok"}); err != nil {
		t.Fatal(err)
	}
	_, err = sched.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Namespace: "team-a", Name: "tok"})
	wantCode(t, err, codes.NotFound, "tok")
	_, err = sched.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Namespace: "nope", Name: "tok"})
	wantCode(t, err, codes.NotFound, "namespace nope")
	if _, err := sched.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: "team-a"}); err != nil {
		t.Fatalf("delete the emptied namespace: %v", err)
	}
	if r, err := sched.ResealSecrets(ctx, &cairnv1.ResealSecretsRequest{}); err != nil || r.GetResealed() != 0 || r.GetActiveKeyId() != "k1" {
		t.Fatalf("reseal with nothing to do: %v %v", r, err)
	}

	// A second scheduler without a keyring takes over the same database: secrets cannot be
	// set or used, and the refusal says what to configure.
	cfg2 := testConfig(t, dbURL, etcd.Endpoints(), "s2")
	cfg2.EtcdPrefix = "/other/"
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, cfg2)
	waitFor(t, 15*time.Second, "leadership", b.Leading)
	sched = cairnv1.NewSchedulerServiceClient(dial(t, b.GRPCAddr()))
	waitFor(t, 10*time.Second, "the engine to accept calls", func() bool {
		_, err = sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "tok", Value: value})
		return codeOf(err) != codes.Unavailable
	})
	wantCode(t, err, codes.FailedPrecondition, "--secrets-keyring-file")
	_, err = sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{Yaml: yaml})
	wantCode(t, err, codes.FailedPrecondition, "--secrets-keyring-file")
	_, err = sched.ResealSecrets(ctx, &cairnv1.ResealSecretsRequest{})
	wantCode(t, err, codes.FailedPrecondition, "CAIRN_SECRETS_KEYRING")
	if _, err := sched.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Name: "tok"}); err != nil {
		t.Errorf("delete needs no keyring: %v", err)
	}
}

// recvUntil receives messages of s until one matches.
func recvUntil(t *testing.T, s cairnv1.WorkerService_ConnectClient, what string, match func(*cairnv1.SchedulerMessage) bool) *cairnv1.SchedulerMessage {
	t.Helper()
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(m) {
			return m
		}
	}
}

// The leader's side of the stream's secrets protocol, with raw worker streams: the
// assignment carries the secret's placeholder and no value; the values are given only to the
// worker the attempt is assigned to, only for names its task references, and a secret
// deleted since is reported missing.
func TestWorkerStreamGivesSecretsOnlyToTheAssignedWorker(t *testing.T) {
	etcd := etcdtest.Start(t)
	keyring, err := secretbox.Open([]byte(keyLine(t, "k1")))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, pgtest.NewDatabase(t), etcd.Endpoints(), "s1")
	cfg.Keyring = keyring
	a := startApp(t, cfg)
	waitFor(t, 15*time.Second, "leadership", a.Leading)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sched := cairnv1.NewSchedulerServiceClient(dial(t, a.GRPCAddr()))
	const value = "s3cr3t-over-the-stream"
	waitFor(t, 10*time.Second, "the engine to accept calls", func() bool {
		_, err = sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "tok", Value: value})
		return codeOf(err) != codes.Unavailable
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sched.SetSecret(ctx, &cairnv1.SetSecretRequest{Name: "other", Value: value + "-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sched.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{
		Yaml: "name: sec\ntasks:\n  - id: a\n    type: shell\n    command: [env]\n    env: {T: '{{ secret \"tok\" }}'}\n"}); err != nil {
		t.Fatal(err)
	}

	wclient := cairnv1.NewWorkerServiceClient(dial(t, a.GRPCAddr()))
	streams := map[string]cairnv1.WorkerService_ConnectClient{}
	for _, id := range []string{"w1", "w2"} {
		reg, err := membership.Register(ctx, etcd.Client(t), membership.Info{ID: id, Address: "127.0.0.1:1", Capacity: 1, Started: time.Now()}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		s, err := wclient.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		send(t, s, hello(id, 1))
		recvUntil(t, s, "welcome", func(m *cairnv1.SchedulerMessage) bool { return m.GetWelcome() != nil })
		streams[id] = s
	}
	w1, w2 := streams["w1"], streams["w2"]
	send(t, w1, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Credits{Credits: &cairnv1.WorkerCredits{FreeSlots: 1}}})
	if _, err := sched.StartRun(ctx, &cairnv1.StartRunRequest{Workflow: "sec"}); err != nil {
		t.Fatal(err)
	}
	as := recvUntil(t, w1, "assignment", func(m *cairnv1.SchedulerMessage) bool { return m.GetAssignment() != nil }).GetAssignment()
	refs := as.GetSecrets()
	if len(refs) != 1 || refs[0].GetName() != "tok" || as.GetSpec().GetShell().GetEnv()["T"] != refs[0].GetPlaceholder() ||
		strings.Contains(as.String(), value) {
		t.Fatalf("assignment %v: want tok's placeholder and no value", as)
	}
	send(t, w1, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Started{Started: &cairnv1.AttemptStarted{
		AttemptId: as.GetAttemptId(), FencingToken: as.GetFencingToken()}}})
	n := 0
	ask := func(s cairnv1.WorkerService_ConnectClient, names ...string) *cairnv1.SecretsResponse {
		t.Helper()
		n++
		id := fmt.Sprintf("r%d", n)
		send(t, s, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_SecretsRequest{SecretsRequest: &cairnv1.SecretsRequest{
			RequestId: id, AttemptId: as.GetAttemptId(), FencingToken: as.GetFencingToken(), Names: names}}})
		return recvUntil(t, s, "secrets response "+id, func(m *cairnv1.SchedulerMessage) bool {
			return m.GetSecretsResponse().GetRequestId() == id
		}).GetSecretsResponse()
	}

	if r := ask(w2, "tok"); len(r.GetSecrets()) != 0 || !strings.Contains(r.GetError(), "is assigned to another worker") || r.GetRetryable() {
		t.Errorf("another worker's request: %v", r)
	}
	if r := ask(w1, "tok", "other"); len(r.GetSecrets()) != 0 || !strings.Contains(r.GetError(), `does not reference secret(s) ["other"]`) {
		t.Errorf("a request for a name the task does not reference: %v", r)
	}
	r := ask(w1, "tok")
	if r.GetError() != "" || len(r.GetSecrets()) != 1 || r.GetSecrets()[0].GetName() != "tok" || r.GetSecrets()[0].GetValue() != value {
		t.Fatalf("the assigned worker's request: %v %v", r.GetError(), len(r.GetSecrets()))
	}
	if _, err := sched.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Name: "tok"}); err != nil {
		t.Fatal(err)
	}
	if r := ask(w1, "tok"); r.GetError() != "" || len(r.GetSecrets()) != 0 || !slices.Equal(r.GetMissing(), []string{"tok"}) {
		t.Errorf("after the secret was deleted: %v", r)
	}
	// A malformed request ends the stream like any protocol violation.
	send(t, w2, &cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_SecretsRequest{SecretsRequest: &cairnv1.SecretsRequest{RequestId: "x"}}})
	_, err = w2.Recv()
	wantCode(t, err, codes.InvalidArgument, "secrets_request")
}
