package worker

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/etcdtest"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// placeholder is a well-formed placeholder of secret name (the nonce is arbitrary here).
func placeholder(name string) string {
	return "cairn-secret-" + name + "-0123456789abcdef0123456789abcdef"
}

// withSecretRefs adds refs for names to a, whose spec already uses their placeholders.
func withSecretRefs(a *cairnv1.Assignment, names ...string) *cairnv1.Assignment {
	for _, n := range names {
		a.Secrets = append(a.Secrets, &cairnv1.SecretRef{Name: n, Placeholder: placeholder(n)})
	}
	return a
}

// awaitSecretsRequest waits for the worker's request for an attempt's secrets.
func (p *peer) awaitSecretsRequest(t *testing.T, attemptID string) *cairnv1.SecretsRequest {
	t.Helper()
	return p.await(t, "secrets request of "+attemptID, func(m *cairnv1.WorkerMessage) bool {
		return m.GetSecretsRequest().GetAttemptId() == attemptID
	}).GetSecretsRequest()
}

func (p *peer) answerSecrets(t *testing.T, r *cairnv1.SecretsResponse) {
	t.Helper()
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_SecretsResponse{SecretsResponse: r}})
}

// TestSecretsAreAskedForMaskedAndRetriedOnANewStream: an attempt whose assignment lists
// secrets asks the leader for them (attempt, token, names), runs with the values in place of
// the placeholders, and reports output and errors with every form of the values masked; the
// worker's own log lines are masked too. A request lost with its stream is asked again on the
// next one. A secret the leader reports missing fails the attempt without retry, naming it;
// a refusal fails it as a retryable internal error.
func TestSecretsAreAskedForMaskedAndRetriedOnANewStream(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	leader := startLeader(t)
	leader.campaign(t, cli)
	logs := &syncBuffer{}
	startWorker(t, srv, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const value = "s3cr3t/value+with=chars"
	p := leader.accept(t)
	p.welcome(t, nil, nil)
	p.awaitCredits(t)

	// A shell task: the value in its environment, masked in its output in every form.
	p.assign(t, withSecretRefs(shell("a1", 11, `echo "t=$TOKEN"; printf %s "$TOKEN" | base64; echo "$TOKEN" | base64`,
		map[string]string{"TOKEN": placeholder("tok")}), "tok"))
	p.awaitStarted(t, "a1")
	req := p.awaitSecretsRequest(t, "a1")
	if req.GetFencingToken() != 11 || !slices.Equal(req.GetNames(), []string{"tok"}) || req.GetRequestId() == "" {
		t.Fatalf("secrets request %v", req)
	}
	p.answerSecrets(t, &cairnv1.SecretsResponse{RequestId: req.GetRequestId(), AttemptId: "a1",
		Secrets: []*cairnv1.SecretValue{{Name: "tok", Value: value}}})
	r1 := p.awaitResult(t, "a1")
	out := string(r1.GetOutput())
	if r1.GetOutcome() != succeeded || !strings.HasPrefix(out, "t=***\n") || strings.Contains(out, value) ||
		strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(value))) || strings.Count(out, "***") < 3 {
		t.Fatalf("result %v, output %q", r1, out)
	}
	p.ack(t, r1, true)

	// An HTTP task whose URL is the secret: the egress refusal names the URL, masked in the
	// result and in the worker's log line about the failure.
	p.assign(t, withSecretRefs(&cairnv1.Assignment{AttemptId: "a2", RunId: "run-1", TaskId: "call", Attempt: 1, FencingToken: 12,
		Spec: &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_HTTP, Kind: &cairnv1.TaskSpec_Http{Http: &cairnv1.HttpTaskSpec{
			Method: "GET", Url: placeholder("hook")}}}}, "hook"))
	req = p.awaitSecretsRequest(t, "a2")
	// The stream breaks before the answer: the request is asked again on the next one.
	p.drop(nil)
	p = leader.accept(t)
	p.welcome(t, []*cairnv1.AttemptRef{{AttemptId: "a2", FencingToken: 12}}, nil)
	req2 := p.awaitSecretsRequest(t, "a2")
	if req2.GetRequestId() == req.GetRequestId() {
		t.Errorf("the request on the new stream has the old id %s", req.GetRequestId())
	}
	hookURL := "http://127.0.0.1:1/" + value
	p.answerSecrets(t, &cairnv1.SecretsResponse{RequestId: req2.GetRequestId(), AttemptId: "a2",
		Secrets: []*cairnv1.SecretValue{{Name: "hook", Value: hookURL}}})
	r2 := p.awaitResult(t, "a2")
	if r2.GetOutcome() != failed || !strings.Contains(r2.GetError(), "egress denied") || strings.Contains(r2.GetError(), value) ||
		!strings.Contains(r2.GetError(), "***") {
		t.Fatalf("result %v", r2)
	}
	p.ack(t, r2, true)
	waitUntil(t, "the failure logged", func() bool { return strings.Contains(logs.String(), "attempt failed") })

	// A secret deleted since the apply: failed, not retried, named.
	p.assign(t, withSecretRefs(shell("a3", 13, `echo "$A$B"`, map[string]string{"A": placeholder("tok"), "B": placeholder("gone")}), "gone", "tok"))
	req = p.awaitSecretsRequest(t, "a3")
	p.answerSecrets(t, &cairnv1.SecretsResponse{RequestId: req.GetRequestId(), AttemptId: "a3",
		Secrets: []*cairnv1.SecretValue{{Name: "tok", Value: value}}, Missing: []string{"gone"}})
	r3 := p.awaitResult(t, "a3")
	if r3.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_INTERNAL || !r3.GetNoRetry() ||
		!strings.Contains(r3.GetError(), `secret "gone" is not defined in namespace`) {
		t.Fatalf("result with a missing secret %v", r3)
	}
	p.ack(t, r3, true)

	// A refusal (or no keyring on the leader): failed, retryable, with the reason.
	p.assign(t, withSecretRefs(shell("a4", 14, `true`, map[string]string{"A": placeholder("tok")}), "tok"))
	req = p.awaitSecretsRequest(t, "a4")
	p.answerSecrets(t, &cairnv1.SecretsResponse{RequestId: req.GetRequestId(), AttemptId: "a4", Error: "refused: not yours"})
	r4 := p.awaitResult(t, "a4")
	if r4.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_INTERNAL || r4.GetNoRetry() || !strings.Contains(r4.GetError(), "refused: not yours") {
		t.Fatalf("result of a refused request %v", r4)
	}
	p.ack(t, r4, true)

	// While an attempt holds the value, the worker's own log lines are masked with it, whatever
	// brings it there: here the text of a cancel.
	pidfile := t.TempDir() + "/a5.pid"
	p.assign(t, withSecretRefs(shell("a5", 15, `echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 30`,
		map[string]string{"PIDFILE": pidfile, "TOKEN": placeholder("tok")}), "tok"))
	req = p.awaitSecretsRequest(t, "a5")
	p.answerSecrets(t, &cairnv1.SecretsResponse{RequestId: req.GetRequestId(), AttemptId: "a5",
		Secrets: []*cairnv1.SecretValue{{Name: "tok", Value: value}}})
	pidOf(t, pidfile)
	p.cancel(t, "a5", 15, "operator says "+value)
	r5 := p.awaitResult(t, "a5")
	if r5.GetFailureKind() != cancelled || strings.Contains(r5.GetError(), value) || !strings.Contains(r5.GetError(), "operator says ***") {
		t.Fatalf("result of the cancelled attempt %v", r5)
	}
	p.ack(t, r5, true)
	if !strings.Contains(logs.String(), "operator says ***") {
		t.Errorf("the cancel's reason is not masked in the worker's log:\n%s", logs.String())
	}

	// Nothing the worker logged holds the value, in any of its forms.
	text := logs.String()
	for _, f := range []string{value, base64.StdEncoding.EncodeToString([]byte(value)), hookURL} {
		if strings.Contains(text, f) {
			t.Errorf("the worker's log holds %q:\n%s", f, text)
		}
	}
}
