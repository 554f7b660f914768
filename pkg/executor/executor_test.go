package executor_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
)

func noopAttempt() *executor.Attempt {
	return &executor.Attempt{RunID: "r", TaskID: "n", Number: 1, Spec: executor.Spec{Type: executor.TypeNoop}}
}

func TestNoop(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	res := execute(t, t.Context(), d, noopAttempt())
	wantSuccess(t, res)
	if res.ExitCode != -1 || res.HTTPStatus != 0 || len(res.Output) != 0 {
		t.Errorf("noop result %+v", res)
	}

	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	wantFailure(t, execute(t, ctx, d, noopAttempt()), executor.FailureCancelled, cause)
}

func TestInvalidAttempts(t *testing.T) {
	d := newExecutor(t, executor.Config{})
	shell := &executor.ShellSpec{Argv: []string{"true"}}
	cases := map[string]*executor.Attempt{
		"nil attempt":      nil,
		"attempt 0":        {Number: 0, Spec: executor.Spec{Type: executor.TypeNoop}},
		"negative timeout": {Number: 1, Timeout: -time.Second, Spec: executor.Spec{Type: executor.TypeNoop}},
		"empty type":       {Number: 1},
		"unknown type":     {Number: 1, Spec: executor.Spec{Type: "docker"}},
		"shell spec nil":   {Number: 1, Spec: executor.Spec{Type: executor.TypeShell}},
		"http spec nil":    {Number: 1, Spec: executor.Spec{Type: executor.TypeHTTP}},
		"noop with shell":  {Number: 1, Spec: executor.Spec{Type: executor.TypeNoop, Shell: shell}},
		"shell with http":  {Number: 1, Spec: executor.Spec{Type: executor.TypeShell, Shell: shell, HTTP: &executor.HTTPSpec{}}},
		"http with shell":  {Number: 1, Spec: executor.Spec{Type: executor.TypeHTTP, Shell: shell, HTTP: &executor.HTTPSpec{URL: "http://127.0.0.1/"}}},
		"argv and script":  {Number: 1, Spec: executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{Argv: []string{"true"}, Script: "true"}}},
		"neither":          {Number: 1, Spec: executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{}}},
		"empty program":    {Number: 1, Spec: executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{Argv: []string{"", "x"}}}},
		"NUL in argv":      {Number: 1, Spec: executor.Spec{Type: executor.TypeShell, Shell: &executor.ShellSpec{Argv: []string{"echo", "a\x00b"}}}},
	}
	for name, a := range cases {
		res := d.Execute(t.Context(), a)
		if res.Failure != executor.FailureInternal || !errors.Is(res.Err, executor.ErrInvalidSpec) || res.Error == "" {
			t.Errorf("%s: Failure %s, Err %v; want internal / ErrInvalidSpec", name, res.Failure, res.Err)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]executor.Config{
		"negative cap":     {OutputCap: -1},
		"negative grace":   {KillGrace: -time.Second},
		"redirects -2":     {MaxRedirects: -2},
		"relative root":    {AllowedWorkdirRoots: []string{"srv"}},
		"relative scratch": {ScratchDir: "tmp"},
		"base env no =":    {BaseEnv: []string{"PATH"}},
		"base env empty k": {BaseEnv: []string{"=x"}},
		"egress host bits": {EgressAllow: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}},
	} {
		if d, err := executor.New(cfg); err == nil || d != nil || !strings.HasPrefix(err.Error(), "executor config: ") {
			t.Errorf("%s: New = %v, %v; want a config error", name, d, err)
		}
	}
}

func TestFailureKindNames(t *testing.T) {
	kinds := []executor.FailureKind{
		executor.FailureNone, executor.FailureTimeout, executor.FailureExitCode, executor.FailureUnexpectedStatus,
		executor.FailureConnection, executor.FailureCancelled, executor.FailureInternal,
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		name := k.String()
		if seen[name] || strings.HasPrefix(name, "FailureKind(") {
			t.Errorf("%d: name %q is missing or duplicated", int(k), name)
		}
		seen[name] = true
		back, err := executor.ParseFailureKind(name)
		if err != nil || back != k {
			t.Errorf("ParseFailureKind(%q) = %v, %v; want %v", name, back, err, k)
		}
	}
	if _, err := executor.ParseFailureKind("oops"); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("ParseFailureKind(oops) = %v", err)
	}
	if got := executor.FailureKind(99).String(); got != "FailureKind(99)" {
		t.Errorf("String of an unknown kind = %q", got)
	}
}

func BenchmarkNoop(b *testing.B) {
	d := newExecutor(b, executor.Config{})
	a := noopAttempt()
	for b.Loop() {
		if res := d.Execute(b.Context(), a); !res.Succeeded {
			b.Fatal(res.Error)
		}
	}
}

func BenchmarkShellTrue(b *testing.B) {
	d := newExecutor(b, executor.Config{})
	a := shellAttempt(executor.ShellSpec{Argv: []string{"true"}})
	for b.Loop() {
		if res := d.Execute(b.Context(), a); !res.Succeeded {
			b.Fatal(res.Error)
		}
	}
}

func BenchmarkShellScript(b *testing.B) {
	d := newExecutor(b, executor.Config{})
	a := script(`echo "$CAIRN_TASK_ID"`)
	for b.Loop() {
		if res := d.Execute(b.Context(), a); !res.Succeeded {
			b.Fatal(res.Error)
		}
	}
}
