package executor

// Redaction: an attempt that was given secret values carries a Redactor, and everything it
// reports (Output, Error, Err's message) is masked before Execute returns, so no caller — the
// worker's stream, the local runner's report, a log line — sees a value the task printed or an
// error quoted (a URL that holds a token, say). pkg/mask's *Masker is the Redactor Cairn uses;
// this package only calls it.

// Redactor hides secret values in text.
type Redactor interface {
	// String returns s with every secret masked.
	String(s string) string
	// Cut returns b with every secret masked, b being cut from a longer text: cutBefore says
	// bytes before it were dropped, cutAfter that bytes after it were, so a secret split by
	// the cut is masked too.
	Cut(b []byte, cutBefore, cutAfter bool) []byte
}

// redact masks what res reports with a.Redact, if set. A shell task's Output is the tail of
// what it printed, an HTTP task's the head of the body: the cut is on that side when
// OutputTruncated.
func (a *Attempt) redact(res *Result) {
	if a == nil || a.Redact == nil {
		return
	}
	cut := res.OutputTruncated
	res.Output = a.Redact.Cut(res.Output, cut && a.Spec.Type == TypeShell, cut && a.Spec.Type == TypeHTTP)
	if res.Err != nil {
		res.Error = a.Redact.String(res.Error)
		res.Err = &redactedError{msg: res.Error, err: res.Err}
	}
}

// redactedError is an attempt's error with its message masked; errors.Is and errors.As still
// see the original chain.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
