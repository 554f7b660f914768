package executor_test

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/mask"
)

const testSecret = "s3cr3t-T0KEN-value"

func leaks(s string) bool {
	for _, f := range []string{testSecret, base64.StdEncoding.EncodeToString([]byte(testSecret)), url.QueryEscape(testSecret), testSecret[5:], testSecret[:12]} {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

func TestRedactShellOutput(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	a := shellAttempt(executor.ShellSpec{
		Script: `echo "token=$TOKEN"; printf %s "$TOKEN" | base64; echo "$TOKEN" | base64; echo done`,
		Env:    map[string]string{"TOKEN": testSecret},
	})
	a.Redact = mask.New([]mask.Secret{{Name: "token", Value: testSecret}})
	res := execute(t, t.Context(), d, a)
	wantSuccess(t, res)
	if leaks(string(res.Output)) || strings.Count(string(res.Output), mask.Redacted) != 3 || !strings.HasSuffix(string(res.Output), "done\n") {
		t.Fatalf("output %q", res.Output)
	}
	// Without a Redactor the output is what the task printed.
	a.Redact = nil
	if res := execute(t, t.Context(), d, a); !strings.Contains(string(res.Output), testSecret) {
		t.Fatalf("output without redaction %q", res.Output)
	}
}

func TestRedactTruncatedTail(t *testing.T) {
	// The kept tail starts inside the secret: its end must not show.
	d := newExecutor(t, executor.Config{OutputCap: 32})
	a := shellAttempt(executor.ShellSpec{
		Script: `printf 'head %s%s' "$TOKEN" "$(printf 'B%.0s' $(seq 25))"`,
		Env:    map[string]string{"TOKEN": testSecret},
	})
	a.Redact = mask.New([]mask.Secret{{Name: "token", Value: testSecret}})
	res := execute(t, t.Context(), d, a)
	wantSuccess(t, res)
	if !res.OutputTruncated || string(res.Output) != mask.Redacted+strings.Repeat("B", 25) {
		t.Fatalf("tail %q (truncated %v)", res.Output, res.OutputTruncated)
	}
}

// stubTransport answers every request without a network: the body echoes the request's
// Authorization header, or fails with an error that quotes the URL, as a dial error would.
type stubTransport struct{ fail bool }

func (s stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.fail {
		return nil, errors.New("connection refused")
	}
	body := "you sent " + r.Header.Get("Authorization") + strings.Repeat(".", 40) + testSecret
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func TestRedactHTTP(t *testing.T) {
	m := mask.New([]mask.Secret{{Name: "token", Value: testSecret}})
	spec := executor.HTTPSpec{URL: "http://api.test/v1?key=" + url.QueryEscape(testSecret), Headers: map[string]string{"Authorization": "Bearer " + testSecret}}
	attempt := func() *executor.Attempt {
		return &executor.Attempt{RunID: "r", TaskID: "t", Number: 1, Redact: m, Spec: executor.Spec{Type: executor.TypeHTTP, HTTP: &spec}}
	}
	// The body's head is kept and cut inside the secret at its end.
	d := newExecutor(t, executor.Config{HTTPTransport: stubTransport{}, OutputCap: len("you sent Bearer "+testSecret) + 40 + 10})
	res := execute(t, t.Context(), d, attempt())
	wantSuccess(t, res)
	if !res.OutputTruncated || leaks(string(res.Output)) || !strings.HasSuffix(string(res.Output), "."+mask.Redacted) {
		t.Fatalf("body %q (truncated %v)", res.Output, res.OutputTruncated)
	}
	// An error that quotes the URL is masked, and still wraps what it wrapped.
	d = newExecutor(t, executor.Config{HTTPTransport: stubTransport{fail: true}})
	res = execute(t, t.Context(), d, attempt())
	wantFailure(t, res, executor.FailureConnection, nil)
	var ue *url.Error
	if leaks(res.Error) || leaks(res.Err.Error()) || !strings.Contains(res.Error, "key="+mask.Redacted) || !errors.As(res.Err, &ue) {
		t.Fatalf("error %q / %v", res.Error, res.Err)
	}
}
