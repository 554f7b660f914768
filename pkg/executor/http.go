package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cairn-io/cairn/pkg/egress"
)

// IdempotencyKeyHeader carries Attempt.IdempotencyKey on HTTP tasks.
const IdempotencyKeyHeader = "Idempotency-Key"

// userAgent is sent unless the task sets its own User-Agent.
const userAgent = "cairn-executor"

type httpExec struct {
	client    *http.Client
	policy    *egress.Policy
	outputCap int
}

// NewHTTPTransport returns the transport HTTP tasks use by default: direct connections only
// (proxy environment variables are ignored: a proxy would be the address dialed and checked,
// and it would connect to the target itself), every connection checked against p at dial time
// on the resolved address (nil p: the default policy), bounded dial and TLS handshake times,
// idle connections kept for reuse across attempts.
func NewHTTPTransport(p *egress.Policy) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func newHTTP(cfg Config, policy *egress.Policy) *httpExec {
	tr := cfg.HTTPTransport
	if tr == nil {
		tr = NewHTTPTransport(policy)
	}
	maxRedirects := cfg.MaxRedirects
	return &httpExec{
		outputCap: cfg.OutputCap,
		policy:    policy,
		client: &http.Client{
			Transport: tr,
			// No Client.Timeout: the attempt's context bounds the whole exchange, body included.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if maxRedirects == NoRedirects {
					return http.ErrUseLastResponse
				}
				if len(via) > maxRedirects {
					return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, maxRedirects)
				}
				// The dial-time check refuses a blocked destination anyway; this refuses a
				// blocked literal before any lookup or connection, with a clearer error.
				return policy.CheckURL(req.URL)
			},
		},
	}
}

func (h *HTTPSpec) validate() error {
	if h == nil {
		return fmt.Errorf("%w: http task without an http spec", ErrInvalidSpec)
	}
	if h.Method != "" && !isToken(h.Method) {
		return fmt.Errorf("%w: method %q is not a valid HTTP method", ErrInvalidSpec, h.Method)
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("%w: url: %w", ErrInvalidSpec, err)
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return fmt.Errorf("%w: url %q: scheme must be http or https", ErrInvalidSpec, u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%w: url %q has no host", ErrInvalidSpec, u.Redacted())
	}
	seen := make(map[string]string, len(h.Headers))
	for k, v := range h.Headers {
		if !isToken(k) {
			return fmt.Errorf("%w: header name %q is not valid", ErrInvalidSpec, k)
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return fmt.Errorf("%w: header %s: value contains a control character (%#x)", ErrInvalidSpec, k, c)
			}
		}
		canon := http.CanonicalHeaderKey(k)
		if other, dup := seen[canon]; dup {
			return fmt.Errorf("%w: headers %q and %q are the same header", ErrInvalidSpec, other, k)
		}
		seen[canon] = k
	}
	for _, code := range h.ExpectStatus {
		if code < 100 || code > 599 {
			return fmt.Errorf("%w: expect_status %d is not an HTTP status (100-599)", ErrInvalidSpec, code)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token (methods, header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (h *httpExec) run(ctx context.Context, a *Attempt, res *Result) {
	spec := a.Spec.HTTP
	method := spec.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if spec.Body != "" {
		body = strings.NewReader(spec.Body) // lets a 307/308 redirect resend it
	}
	req, err := http.NewRequestWithContext(ctx, method, spec.URL, body)
	if err != nil {
		res.fail(FailureInternal, fmt.Errorf("%w: %w", ErrInvalidSpec, err))
		return
	}
	for k, v := range spec.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if a.IdempotencyKey != "" && req.Header.Get(IdempotencyKeyHeader) == "" {
		req.Header.Set(IdempotencyKeyHeader, a.IdempotencyKey)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if err := h.policy.CheckURL(req.URL); err != nil {
		failEgress(res, err, method, req.URL.Redacted(), "")
		return
	}

	resp, err := h.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			res.failContext(ctx, a.Timeout)
		case errors.Is(err, ErrEgressDenied):
			if resp != nil { // a redirect refused before it was followed
				res.HTTPStatus = resp.StatusCode
			}
			target := ""
			var uerr *url.Error
			if errors.As(err, &uerr) {
				if t, perr := url.Parse(uerr.URL); perr == nil {
					target = t.Redacted()
				}
			}
			failEgress(res, err, method, req.URL.Redacted(), target)
		case errors.Is(err, ErrTooManyRedirects):
			if resp != nil {
				res.HTTPStatus = resp.StatusCode
			}
			res.fail(FailureUnexpectedStatus, err)
		default:
			res.fail(FailureConnection, err)
		}
		return
	}
	defer resp.Body.Close()
	res.HTTPStatus = resp.StatusCode

	// Keep the head of the body: that is where a response says what it is, and it lets us
	// stop reading a huge body at the cap.
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.outputCap)+1))
	if len(data) > h.outputCap {
		data, res.OutputTruncated = data[:h.outputCap], true
	}
	res.Output = data
	if err != nil {
		if ctx.Err() != nil {
			res.failContext(ctx, a.Timeout)
		} else {
			res.fail(FailureConnection, fmt.Errorf("%s %s: read response body: %w", method, req.URL.Redacted(), err))
		}
		return
	}
	if !statusExpected(resp.StatusCode, spec.ExpectStatus) {
		want := "any 2xx"
		if len(spec.ExpectStatus) > 0 {
			want = fmt.Sprint(spec.ExpectStatus)
		}
		res.fail(FailureUnexpectedStatus, fmt.Errorf("%w: %s %s answered %s, want %s",
			ErrUnexpectedStatus, method, req.URL.Redacted(), resp.Status, want))
	}
}

// failEgress records a refusal of the egress policy: FailureInternal, not retried, the
// policy's message (address, rule, how to allow it) first, then the request, and target when
// the refused URL was a redirect's.
func failEgress(res *Result, err error, method, u, target string) {
	msg := err.Error()
	var denied *egress.DeniedError
	if errors.As(err, &denied) {
		msg = denied.Error() // without the client's and the dialer's wrapping
	}
	msg += ": " + method + " " + u
	if target != "" && target != u {
		msg += " redirected to " + target
	}
	res.NoRetry = true
	res.fail(FailureInternal, &egressError{msg: msg, err: err})
}

// egressError is a refusal with its message rewritten; it unwraps to the original error
// (the *url.Error, *net.OpError and *egress.DeniedError chain).
type egressError struct {
	msg string
	err error
}

func (e *egressError) Error() string { return e.msg }
func (e *egressError) Unwrap() error { return e.err }

func statusExpected(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(expect, code)
}
