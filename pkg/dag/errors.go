package dag

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Sentinel kinds. Every *Error unwraps to exactly one of ErrInvalid, ErrSyntax or ErrLimit, so a
// caller can tell a malformed file from a hostile one with errors.Is, through an ErrorList too.
var (
	// ErrInvalid: the file is well-formed YAML but not a valid workflow.
	ErrInvalid = errors.New("invalid workflow")
	// ErrSyntax: the file is not well-formed YAML.
	ErrSyntax = errors.New("YAML syntax error")
	// ErrLimit: the file exceeds one of the Limits.
	ErrLimit = errors.New("workflow limit exceeded")
	// ErrParams: run parameters are unknown, too long, or render a field into something invalid.
	ErrParams = errors.New("invalid run parameters")
)

// Error is one problem found in a workflow file, at a position.
type Error struct {
	File   string // file name as given to Parse
	Line   int    // 1-based; 0 when the problem has no position (e.g. the file is too large)
	Column int    // 1-based; 0 when unknown
	TaskID string // the task the problem belongs to, "" for workflow-level problems
	Field  string // path of the offending field, e.g. "tasks[2].http.url"; "" when none
	Msg    string // the problem, naming the field in words
	Kind   error  // ErrInvalid, ErrSyntax or ErrLimit
}

// Error prints the problem compiler style: `file:line:column: task "id": message`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.TaskID != "" {
		fmt.Fprintf(&b, "task %q: ", e.TaskID)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the error's kind.
func (e *Error) Unwrap() error { return e.Kind }

// ErrorList is every problem found in one file, sorted by position. Parse returns it as its error.
type ErrorList []*Error

// Error prints one compiler-style line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sortByPosition orders problems by line then column; problems at the same position keep the order
// they were found in.
func (l ErrorList) sortByPosition() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
}
