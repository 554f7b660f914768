package executor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
)

// testServers opens the egress policy to the address httptest servers listen on, and nothing
// else: the default policy refuses loopback.
var testServers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func httpAttempt(spec executor.HTTPSpec) *executor.Attempt {
	return &executor.Attempt{
		RunID: "run-1", TaskID: "notify", Number: 1, IdempotencyKey: "run-1/notify",
		Spec: executor.Spec{Type: executor.TypeHTTP, HTTP: &spec},
	}
}

// recorder is a loopback server that answers with a fixed status and body and records what
// it received.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	Method, Path, Body string
	Header             http.Header
	Host               string
}

func newRecorder(t *testing.T, status int, body string) (*recorder, *httptest.Server) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{r.Method, r.URL.Path, string(b), r.Header.Clone(), r.Host})
		rec.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

func TestHTTPRequestAndDefaultSuccess(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusCreated, `{"ok":true}`)
	d := newExecutor(t, executor.Config{EgressAllow: testServers})
	res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{
		Method: "POST", URL: srv.URL + "/hooks/etl", Body: `{"day":"2026-01-01"}`,
		Headers: map[string]string{"Content-Type": "application/json", "X-Trace": "abc"},
	}))
	wantSuccess(t, res)
	if res.HTTPStatus != 201 || res.ExitCode != -1 || string(res.Output) != `{"ok":true}` || res.OutputTruncated {
		t.Errorf("HTTPStatus %d, ExitCode %d, Output %q, truncated %v", res.HTTPStatus, res.ExitCode, res.Output, res.OutputTruncated)
	}
	reqs := rec.all()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/hooks/etl" || r.Body != `{"day":"2026-01-01"}` ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Trace") != "abc" {
		t.Errorf("server received %+v", r)
	}
	if got := r.Header.Get("Idempotency-Key"); got != "run-1/notify" {
		t.Errorf("Idempotency-Key = %q, want the attempt's key", got)
	}

	// Default method GET; any 2xx succeeds.
	for _, status := range []int{200, 204, 299} {
		rec, srv := newRecorder(t, status, "")
		res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL}))
		wantSuccess(t, res)
		if res.HTTPStatus != status || rec.all()[0].Method != "GET" {
			t.Errorf("status %d: HTTPStatus %d, method %s", status, res.HTTPStatus, rec.all()[0].Method)
		}
	}
}

func TestHTTPExpectStatus(t *testing.T) {
	d := newExecutor(t, executor.Config{EgressAllow: testServers})
	cases := []struct {
		status int
		expect []int
		ok     bool
	}{
		{200, nil, true},
		{404, nil, false},
		{500, nil, false},
		{301, nil, false}, // no Location: not followed, and not 2xx
		{404, []int{404}, true},
		{200, []int{204}, false},
		{204, []int{200, 204}, true},
		{503, []int{200, 204}, false},
	}
	for _, c := range cases {
		_, srv := newRecorder(t, c.status, "body of "+strconv.Itoa(c.status))
		res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL, ExpectStatus: c.expect}))
		if res.HTTPStatus != c.status {
			t.Errorf("status %d: HTTPStatus = %d", c.status, res.HTTPStatus)
		}
		if c.ok {
			if !res.Succeeded {
				t.Errorf("status %d, expect %v: failed: %s", c.status, c.expect, res.Error)
			}
			continue
		}
		if res.Failure != executor.FailureUnexpectedStatus || !errors.Is(res.Err, executor.ErrUnexpectedStatus) {
			t.Errorf("status %d, expect %v: Failure %s, Err %v; want unexpected status", c.status, c.expect, res.Failure, res.Err)
		}
		if !strings.Contains(res.Error, strconv.Itoa(c.status)) || string(res.Output) != "body of "+strconv.Itoa(c.status) {
			t.Errorf("status %d: Error %q, Output %q", c.status, res.Error, res.Output)
		}
	}
}

func TestHTTPIdempotencyKey(t *testing.T) {
	rec, srv := newRecorder(t, 500, "")
	d := newExecutor(t, executor.Config{EgressAllow: testServers})
	// Three attempts of one task run share the key.
	for n := 1; n <= 3; n++ {
		a := httpAttempt(executor.HTTPSpec{URL: srv.URL})
		a.Number = n
		res := execute(t, t.Context(), d, a)
		wantFailure(t, res, executor.FailureUnexpectedStatus, nil)
	}
	// The task's own header wins, whatever its case.
	a := httpAttempt(executor.HTTPSpec{URL: srv.URL, Headers: map[string]string{"idempotency-key": "user-chosen"}})
	execute(t, t.Context(), d, a)
	// No key in the attempt: no header.
	a = httpAttempt(executor.HTTPSpec{URL: srv.URL})
	a.IdempotencyKey = ""
	execute(t, t.Context(), d, a)

	reqs := rec.all()
	if len(reqs) != 5 {
		t.Fatalf("server saw %d requests, want 5", len(reqs))
	}
	for i, want := range []string{"run-1/notify", "run-1/notify", "run-1/notify", "user-chosen", ""} {
		if got := reqs[i].Header.Values("Idempotency-Key"); strings.Join(got, ",") != want {
			t.Errorf("request %d: Idempotency-Key %q, want %q", i, got, want)
		}
	}
}

func TestHTTPBodyCap(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(big)
	}))
	t.Cleanup(srv.Close)

	res := execute(t, t.Context(), newExecutor(t, executor.Config{EgressAllow: testServers}), httpAttempt(executor.HTTPSpec{URL: srv.URL}))
	wantSuccess(t, res)
	if !res.OutputTruncated || !bytes.Equal(res.Output, big[:executor.DefaultOutputCap]) {
		t.Errorf("Output %d bytes, truncated %v; want the first %d bytes, truncated", len(res.Output), res.OutputTruncated, executor.DefaultOutputCap)
	}
	res = execute(t, t.Context(), newExecutor(t, executor.Config{OutputCap: 100, EgressAllow: testServers}), httpAttempt(executor.HTTPSpec{URL: srv.URL}))
	if !res.OutputTruncated || !bytes.Equal(res.Output, big[:100]) {
		t.Errorf("cap 100: Output %q, truncated %v", res.Output, res.OutputTruncated)
	}
	// A body of exactly the cap is not truncated.
	res = execute(t, t.Context(), newExecutor(t, executor.Config{OutputCap: len(big), EgressAllow: testServers}), httpAttempt(executor.HTTPSpec{URL: srv.URL}))
	if res.OutputTruncated || len(res.Output) != len(big) {
		t.Errorf("cap = body size: %d bytes, truncated %v", len(res.Output), res.OutputTruncated)
	}
}

// redirectServer redirects /r/N to /r/N-1 … /r/0, which answers 200; it records the
// Idempotency-Key and body each hop received.
func redirectServer(t *testing.T, code int) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("Idempotency-Key")+" "+string(b))
		mu.Unlock()
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if err != nil {
			http.Error(w, "bad path", 400)
			return
		}
		if n == 0 {
			_, _ = io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), code)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestHTTPRedirects(t *testing.T) {
	srv, _ := redirectServer(t, http.StatusFound)
	d := newExecutor(t, executor.Config{EgressAllow: testServers})

	res := execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/5"}))
	wantSuccess(t, res)
	if string(res.Output) != "arrived" {
		t.Errorf("5 redirects: Output %q", res.Output)
	}
	res = execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/6"}))
	wantFailure(t, res, executor.FailureUnexpectedStatus, executor.ErrTooManyRedirects)
	if res.HTTPStatus != http.StatusFound {
		t.Errorf("6 redirects: HTTPStatus %d, want the last redirect's 302", res.HTTPStatus)
	}

	two := newExecutor(t, executor.Config{MaxRedirects: 2, EgressAllow: testServers})
	wantSuccess(t, execute(t, t.Context(), two, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/2"})))
	wantFailure(t, execute(t, t.Context(), two, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/3"})),
		executor.FailureUnexpectedStatus, executor.ErrTooManyRedirects)

	none := newExecutor(t, executor.Config{MaxRedirects: executor.NoRedirects, EgressAllow: testServers})
	res = execute(t, t.Context(), none, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/1"}))
	wantFailure(t, res, executor.FailureUnexpectedStatus, executor.ErrUnexpectedStatus)
	res = execute(t, t.Context(), none, httpAttempt(executor.HTTPSpec{URL: srv.URL + "/r/1", ExpectStatus: []int{302}}))
	wantSuccess(t, res)
	if res.HTTPStatus != 302 {
		t.Errorf("NoRedirects: HTTPStatus %d, want 302", res.HTTPStatus)
	}

	// A 307 keeps the method, the body and the Idempotency-Key.
	srv307, seen := redirectServer(t, http.StatusTemporaryRedirect)
	res = execute(t, t.Context(), d, httpAttempt(executor.HTTPSpec{Method: "POST", URL: srv307.URL + "/r/2", Body: "payload"}))
	wantSuccess(t, res)
	for i, s := range *seen {
		if s != "POST run-1/notify payload" {
			t.Errorf("hop %d received %q", i, s)
		}
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := execute(t, t.Context(), newExecutor(t, executor.Config{EgressAllow: testServers}), httpAttempt(executor.HTTPSpec{URL: "http://" + addr + "/"}))
	wantFailure(t, res, executor.FailureConnection, nil)
	if !strings.Contains(res.Error, "connection refused") || res.HTTPStatus != 0 {
		t.Errorf("Error %q, HTTPStatus %d", res.Error, res.HTTPStatus)
	}
}

func TestHTTPTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	d := newExecutor(t, executor.Config{EgressAllow: testServers})

	a := httpAttempt(executor.HTTPSpec{URL: srv.URL + "/slow"})
	a.Timeout = 200 * time.Millisecond
	res := execute(t, t.Context(), d, a)
	wantFailure(t, res, executor.FailureTimeout, executor.ErrTimeout)

	// A timeout while reading the body: the status arrived, the attempt still timed out.
	a = httpAttempt(executor.HTTPSpec{URL: srv.URL + "/slow-body"})
	a.Timeout = 200 * time.Millisecond
	res = execute(t, t.Context(), d, a)
	wantFailure(t, res, executor.FailureTimeout, executor.ErrTimeout)
	if res.HTTPStatus != 200 || string(res.Output) != "partial" {
		t.Errorf("HTTPStatus %d, Output %q; want 200 and the partial body", res.HTTPStatus, res.Output)
	}

	cause := errors.New("worker draining")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(200*time.Millisecond, func() { cancel(cause) })
	a = httpAttempt(executor.HTTPSpec{URL: srv.URL + "/slow"})
	a.Timeout = time.Minute
	res = execute(t, ctx, d, a)
	wantFailure(t, res, executor.FailureCancelled, cause)
	if !strings.Contains(res.Error, "worker draining") {
		t.Errorf("Error %q does not carry the cause", res.Error)
	}
}

func TestHTTPInvalidSpec(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	for name, spec := range map[string]executor.HTTPSpec{
		"no url":         {},
		"ftp":            {URL: "ftp://127.0.0.1/x"},
		"relative":       {URL: "/just/a/path"},
		"no host":        {URL: "http:///path"},
		"bad method":     {Method: "GET /", URL: "http://127.0.0.1/"},
		"bad header":     {URL: "http://127.0.0.1/", Headers: map[string]string{"Bad Name": "x"}},
		"header newline": {URL: "http://127.0.0.1/", Headers: map[string]string{"X-A": "a\r\nX-Injected: 1"}},
		"dup header":     {URL: "http://127.0.0.1/", Headers: map[string]string{"X-A": "1", "x-a": "2"}},
		"bad status":     {URL: "http://127.0.0.1/", ExpectStatus: []int{200, 99}},
	} {
		res := execute(t, t.Context(), d, httpAttempt(spec))
		if res.Failure != executor.FailureInternal || !errors.Is(res.Err, executor.ErrInvalidSpec) {
			t.Errorf("%s: Failure %s, Err %v; want internal / ErrInvalidSpec", name, res.Failure, res.Err)
		}
	}
}

func TestHTTPDefaultTransportIgnoresProxyEnvironment(t *testing.T) {
	// Loopback never goes through a proxy anyway, so check the transport itself.
	if tr := executor.NewHTTPTransport(nil); tr.Proxy != nil {
		t.Error("NewHTTPTransport has a Proxy function; proxy environment variables would apply")
	}
	// And a task's Host header reaches the server as the Host.
	rec, srv := newRecorder(t, 200, "")
	wantSuccess(t, execute(t, t.Context(), newExecutor(t, executor.Config{EgressAllow: testServers}),
		httpAttempt(executor.HTTPSpec{URL: srv.URL, Headers: map[string]string{"Host": "virtual.example"}})))
	if got := rec.all()[0].Host; got != "virtual.example" {
		t.Errorf("Host = %q", got)
	}
}
