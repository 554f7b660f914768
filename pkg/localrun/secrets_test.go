package localrun_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/localrun"
)

const (
	tokenValue = "the-real-token-value-42"
	dbValue    = "db password with spaces"
)

const secretsWorkflow = `
name: secrets
tasks:
  - id: use
    type: shell
    env: {TOKEN: '{{ secret "api-token" }}', DB: 'pw={{ secret "db.password" }}'}
    command: |
      test "$TOKEN" = "the-real-token-value-42" || { echo "TOKEN not resolved: $TOKEN"; exit 1; }
      echo "token: $TOKEN"
      printf %s "$TOKEN" | base64
      echo "$DB"
  - id: leak-later
    type: shell
    depends_on: [use]
    env: {DB: '{{ secret "db.password" }}'}
    command: 'echo "$DB" >&2; exit 3'
  - id: plain
    type: shell
    command: [echo, "no secrets here"]
`

func leaked(s string) string {
	for _, v := range []string{tokenValue, dbValue} {
		for _, f := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), url.QueryEscape(v)} {
			if strings.Contains(s, f) {
				return f
			}
		}
	}
	return ""
}

func TestSecretsResolvedAndMasked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(file, []byte("# local secrets\napi-token="+tokenValue+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup, err := localrun.LoadSecrets(file, []string{"CAIRN_SECRET_DB_PASSWORD=" + dbValue, "CAIRN_SECRET_API_TOKEN=overridden-by-the-file"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []localrun.Event
	rep, err := localrun.Run(context.Background(), parse(t, secretsWorkflow), localrun.Config{
		Executor: realExecutor(t), Secrets: lookup,
		OnEvent: func(e localrun.Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	use, later := rep.Tasks[0], rep.Tasks[1]
	if use.State != localrun.Succeeded {
		t.Fatalf("use: %s %q %q", use.State, use.Error, use.Output)
	}
	if want := "token: ***\n***\npw=***\n"; string(use.Output) != want {
		t.Errorf("use output %q, want %q", use.Output, want)
	}
	if later.State != localrun.Failed || string(later.Output) != "***\n" {
		t.Errorf("leak-later: %s %q", later.State, later.Output)
	}
	for _, tr := range rep.Tasks {
		if f := leaked(string(tr.Output) + tr.Error); f != "" {
			t.Errorf("task %s reports %q", tr.ID, f)
		}
	}
	for _, e := range events {
		if f := leaked(e.Error); f != "" {
			t.Errorf("event %+v shows %q", e, f)
		}
	}
}

// leakyExecutor is an Executor that does not mask: it puts the env values it was given in its
// output and error. The runner masks what it reports anyway.
type leakyExecutor struct{}

func (leakyExecutor) Execute(_ context.Context, a *executor.Attempt) *executor.Result {
	now := time.Now()
	v := a.Spec.Shell.Env["TOKEN"]
	return &executor.Result{Failure: executor.FailureExitCode, ExitCode: 1, Error: "failed with " + v, Err: errors.New("x"),
		Output: []byte("out " + v), Started: now, Finished: now}
}

func TestRunnerMasksWhateverTheExecutor(t *testing.T) {
	wf := parse(t, `
name: s
tasks: [{id: a, type: shell, env: {TOKEN: '{{ secret "api-token" }}'}, command: [env]}]
`)
	lookup, _ := localrun.LoadSecrets("", []string{"CAIRN_SECRET_API_TOKEN=" + tokenValue})
	var evErr string
	rep, err := localrun.Run(context.Background(), wf, localrun.Config{Executor: leakyExecutor{}, Secrets: lookup,
		OnEvent: func(e localrun.Event) {
			if e.Error != "" {
				evErr = e.Error
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if tr := rep.Tasks[0]; string(tr.Output) != "out ***" || tr.Error != "failed with ***" || evErr != "failed with ***" {
		t.Fatalf("report %q / %q, event %q", tr.Output, tr.Error, evErr)
	}
}

func TestMissingSecretsFailBeforeTheRun(t *testing.T) {
	wf := parse(t, secretsWorkflow)
	ex := &scripted{}
	_, err := localrun.Run(context.Background(), wf, localrun.Config{Executor: ex})
	if !errors.Is(err, localrun.ErrSecrets) ||
		!strings.Contains(err.Error(), `secrets "api-token", "db.password" are not set`) ||
		!strings.Contains(err.Error(), "CAIRN_SECRET_API_TOKEN, CAIRN_SECRET_DB_PASSWORD") {
		t.Fatalf("no lookup: %v", err)
	}
	lookup, _ := localrun.LoadSecrets("", []string{"CAIRN_SECRET_API_TOKEN=abc", "CAIRN_SECRET_DB_PASSWORD=" + dbValue})
	_, err = localrun.Run(context.Background(), wf, localrun.Config{Executor: ex, Secrets: lookup})
	if !errors.Is(err, localrun.ErrSecrets) || !strings.Contains(err.Error(), `secret "api-token" is shorter than 4 bytes`) || strings.Contains(err.Error(), "abc") {
		t.Fatalf("short value: %v", err)
	}
	if len(ex.started) != 0 {
		t.Fatalf("attempts started: %v", ex.started)
	}
}

func TestParseSecretsFile(t *testing.T) {
	got, err := localrun.ParseSecretsFile("s", []byte("# c\n\n  a = value=with=equals \r\nb.c-d_e=xxxx\n"))
	if err != nil || got["a"] != " value=with=equals " || got["b.c-d_e"] != "xxxx" || len(got) != 2 {
		t.Fatalf("%q, %v", got, err)
	}
	for _, c := range []struct{ in, want string }{
		{"novalue\n", "s:1: want name=value"},
		{"\nBad=abcdef\n", `s:2: "Bad" is not a valid secret name`},
		{"=abcdef\n", `s:1: "" is not a valid secret name`},
		{"a=abcdef\nb=abcdef\na=ghijkl\n", `s:3: secret "a" is already set at line 1`},
		{"a=sho\n", `s:1: the value of secret "a" is shorter than 4 bytes`},
	} {
		_, err := localrun.ParseSecretsFile("s", []byte(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "abcdef") || strings.Contains(err.Error(), "ghijkl") || strings.Contains(err.Error(), "sho\"")) {
			t.Errorf("%q: error %q shows a value", c.in, err)
		}
	}
	if _, err := localrun.LoadSecrets(filepath.Join(t.TempDir(), "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSecretEnvVar(t *testing.T) {
	for name, want := range map[string]string{"db.password": "CAIRN_SECRET_DB_PASSWORD", "api-token": "CAIRN_SECRET_API_TOKEN", "x_1": "CAIRN_SECRET_X_1"} {
		if got := localrun.SecretEnvVar(name); got != want {
			t.Errorf("%s → %s, want %s", name, got, want)
		}
	}
}
