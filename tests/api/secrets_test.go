package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// leakForms are the spellings of a secret value the leak check looks for: the value, its
// standard and URL-safe base64 with and without padding (alone, and followed by the newline
// `echo` adds), its URL encodings (query and path), and its hex (how PostgreSQL prints bytea).
func leakForms(v string) map[string]string {
	forms := map[string]string{"plain": v, "hex": hex.EncodeToString([]byte(v)),
		"query-escaped": url.QueryEscape(v), "path-escaped": url.PathEscape(v)}
	for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding,
		"std-raw": base64.RawStdEncoding, "url-raw": base64.RawURLEncoding} {
		forms["base64-"+name] = enc.EncodeToString([]byte(v))
		// echo "$TOKEN" | base64: the value and a newline; the value's own characters are the
		// whole encoding but its last group.
		full := enc.EncodeToString([]byte(v + "\n"))
		forms["base64-"+name+"-newline"] = full[:len(full)-4]
	}
	return forms
}

// findLeaks reports every form of value found in text, with some context.
func findLeaks(where, text, value string) []string {
	var out []string
	for name, f := range leakForms(value) {
		if i := strings.Index(text, f); i >= 0 {
			lo, hi := max(0, i-60), min(len(text), i+len(f)+60)
			out = append(out, fmt.Sprintf("%s holds the secret (%s) at byte %d: …%s…", where, name, i, text[lo:hi]))
		}
	}
	return out
}

// hookServer is a loopback HTTP server that records the Authorization header it receives and
// answers with the token in its body, plainly and encoded, so that masking of an HTTP task's
// output is tested too.
type hookServer struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func startHook(t *testing.T) *hookServer {
	t.Helper()
	h := &hookServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		h.mu.Lock()
		h.seen = append(h.seen, tok+"|"+r.Header.Get("X-Token")+"|"+string(body))
		h.mu.Unlock()
		fmt.Fprintf(w, "got %s; base64 %s; urlencoded %s\n", tok, base64.StdEncoding.EncodeToString([]byte(tok)), url.QueryEscape(tok))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	h.url = "http://" + ln.Addr().String() + "/hook"
	return h
}

func (h *hookServer) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// TestSecretNeverLeaks is issue 10's end-to-end check, over the real binaries: a secret is
// registered, a run echoes it, prints it base64-encoded and sends it in headers and a body to
// a loopback server, and a task fails after printing it (a dead letter). The value then
// appears zero times — plain, base64 (standard, URL-safe, with and without padding) or
// URL-encoded — in a dump of every PostgreSQL table, in every API response about the run
// (run, attempts and their output, events, watch, dead letters, listings), and in the log of
// every process; while the loopback server did receive it, so the check can fail. A secret
// deleted after the apply fails its attempt, without retry, naming it.
func TestSecretNeverLeaks(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Gateway: true, Workers: 1, WorkerConcurrency: 2, LogLevel: "debug",
		// HTTP tasks may call the loopback hook (the egress policy blocks loopback by default).
		Env: map[string]string{"CAIRN_EGRESS_ALLOW": "127.0.0.0/8"}})
	api := newREST(t, c)
	hook := startHook(t)
	value := "e2e+" + rand.Text() + "/x=y z" // characters that every encoding changes
	other := "gone-" + rand.Text()

	for name, v := range map[string]string{"e2e-token": value, "gone": other} {
		body, _ := json.Marshal(map[string]string{"value": v})
		var set cairnv1.SetSecretResponse
		api.do(http.MethodPut, "/v1/secrets/"+name, body).ok(t, &set)
		if set.GetSecret().GetName() != name || set.GetSecret().GetKeyId() != "e2e-1" {
			t.Fatalf("set %s: %v", name, &set)
		}
	}
	// An unknown secret is refused when the workflow is applied.
	r := api.post("/v1/workflows", map[string]string{"yaml": "name: unknown\ntasks:\n  - id: a\n    type: shell\n    command: [env]\n    env: {T: '{{ secret \"nope\" }}'}\n"})
	if st := r.failed(t, 400); !strings.Contains(st.Message, `secret "nope" is not defined in namespace default`) {
		t.Errorf("apply with an unknown secret: %s", st.Message)
	}

	wf := fmt.Sprintf(`name: leak
tasks:
  - id: echo
    type: shell
    env: {TOKEN: '{{ secret "e2e-token" }}'}
    command: |
      set -eu
      echo "plain: $TOKEN"
      printf %%s "$TOKEN" | base64
      echo "$TOKEN" | base64
      printf 'split: %%s' "$TOKEN"; printf '%%s\n' "$TOKEN" >&2
  - id: send
    type: http
    depends_on: [echo]
    http:
      method: POST
      url: %s
      headers: {Authorization: 'Bearer {{ secret "e2e-token" }}', X-Token: '{{ secret "e2e-token" }}'}
      body: 'token={{ secret "e2e-token" }}'
  - id: fail
    type: shell
    depends_on: [send]
    env: {TOKEN: '{{ secret "e2e-token" }}'}
    command: |
      echo "about to fail with $TOKEN" >&2
      exit 3
`, hook.url)
	name, _ := api.apply(wf)
	run := api.start(name, nil, "")
	done := api.waitRun(run.GetRunId(), 2*time.Minute)
	states := taskStates(done)
	if done.GetState() != cairnv1.RunState_RUN_STATE_FAILED || states["echo"] != cairnv1.TaskState_TASK_STATE_SUCCEEDED ||
		states["send"] != cairnv1.TaskState_TASK_STATE_SUCCEEDED || states["fail"] != cairnv1.TaskState_TASK_STATE_DEAD_LETTERED {
		t.Fatalf("run %s, tasks %v; want echo and send to succeed and fail to be dead-lettered:\n%s", done.GetState(), states, protojson.Format(done))
	}

	// The value really reached the loopback server, in both headers and the body: the
	// worker resolved it, and the checks below look for something that was there.
	got := hook.requests()
	if len(got) != 1 || got[0] != value+"|"+value+"|token="+value {
		t.Fatalf("the hook received %q, want the secret in Authorization, X-Token and the body", got)
	}

	// Every API response about the run, and the attempts' output decoded.
	var leaks []string
	var texts []string
	get := func(path string) []byte {
		t.Helper()
		r := api.get(path)
		if r.Status != http.StatusOK {
			t.Fatalf("%v", r)
		}
		texts = append(texts, string(r.Body))
		leaks = append(leaks, findLeaks("GET "+path, string(r.Body), value)...)
		return r.Body
	}
	id := run.GetRunId()
	get("/v1/runs/" + id)
	get("/v1/runs?workflow=leak")
	get("/v1/workflows/leak")
	get("/v1/secrets")
	get("/v1/audit-events?page_size=200")
	outputs := map[string]string{}
	for _, task := range []string{"echo", "send", "fail"} {
		var list cairnv1.ListAttemptsResponse
		if err := protojson.Unmarshal(get("/v1/runs/"+id+"/tasks/"+task+"/attempts"), &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list.GetAttempts() {
			outputs[task] += string(a.GetOutput())
			leaks = append(leaks, findLeaks("the output of "+task, string(a.GetOutput()), value)...)
			leaks = append(leaks, findLeaks("the error of "+task, a.GetError(), value)...)
		}
	}
	watch := get("/v1/runs/" + id + ":watch")
	if n := bytes.Count(watch, []byte("\n")); n < 5 {
		t.Errorf("watch returned %d events", n)
	}
	var dls cairnv1.ListDeadLettersResponse
	if err := protojson.Unmarshal(get("/v1/deadletters?run_id="+id), &dls); err != nil || len(dls.GetDeadLetters()) != 1 {
		t.Fatalf("dead letters of the run: %v %v", &dls, err)
	}
	get("/v1/deadletters/" + dls.GetDeadLetters()[0].GetId())

	// Masking happened where the value was: the output shows the mask, the encoded forms are
	// gone, and the HTTP body the hook echoed is masked too.
	if !strings.Contains(outputs["echo"], "plain: ***") || !strings.Contains(outputs["echo"], "split: ***") {
		t.Errorf("echo's output does not show the mask:\n%s", outputs["echo"])
	}
	if !strings.Contains(outputs["send"], "got ***; base64 ***; urlencoded ***") {
		t.Errorf("send's output (the hook's answer) is not masked: %q", outputs["send"])
	}
	if !strings.Contains(outputs["fail"], "about to fail with ***") {
		t.Errorf("fail's output: %q", outputs["fail"])
	}

	// cairnctl's view.
	for _, args := range [][]string{{"runs", "get", id}, {"attempts", id, "echo"}, {"secrets", "list"}} {
		res := cairnctl(t, c, args...)
		if res.code != 0 {
			t.Errorf("%v", res)
		}
		leaks = append(leaks, findLeaks(res.String(), res.stdout+res.stderr, value)...)
	}

	// A secret deleted since the workflow was applied: the attempt fails naming it, and is
	// not retried although the task allows retries.
	api.apply("name: uses-gone\ntasks:\n  - id: a\n    type: shell\n    retries: 2\n    command: [env]\n    env: {T: '{{ secret \"gone\" }}'}\n")
	if r := api.do(http.MethodDelete, "/v1/secrets/gone", nil); r.Status != http.StatusOK {
		t.Fatalf("%v", r)
	}
	gone := api.waitRun(api.start("uses-gone", nil, "").GetRunId(), time.Minute)
	if gone.GetState() != cairnv1.RunState_RUN_STATE_FAILED || len(gone.GetTasks()) != 1 || gone.GetTasks()[0].GetAttempt() != 1 ||
		!strings.Contains(gone.GetTasks()[0].GetLastError(), `secret "gone" is not defined in namespace default`) {
		t.Errorf("run with a deleted secret: %s", protojson.Format(gone))
	}

	// Every row of every table, as text.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := c.Pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if err != nil {
		t.Fatal(err)
	}
	var tableNames []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tableNames = append(tableNames, n)
	}
	rows.Close()
	if len(tableNames) < 14 {
		t.Fatalf("only %d tables: %v", len(tableNames), tableNames)
	}
	dumped := 0
	for _, tbl := range tableNames {
		var dump string
		if err := c.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(string_agg(x::text, E'\n'), '') FROM %q x`, tbl)).Scan(&dump); err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		dumped += len(dump)
		leaks = append(leaks, findLeaks("table "+tbl, dump, value)...)
	}

	// The log of every process.
	var procs []*framework.Process
	procs = append(append(append(procs, c.Schedulers...), c.Workers...), c.Gateway)
	logged := 0
	for _, p := range procs {
		data, err := os.ReadFile(p.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		logged += len(data)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			leaks = append(leaks, findLeaks(fmt.Sprintf("%s log line %d", p.Name, n), sc.Text(), value)...)
		}
	}
	for _, l := range leaks {
		t.Error(l)
	}
	// The other secret's value never reached anything but its row (sealed) and the worker.
	for _, text := range texts {
		if strings.Contains(text, other) {
			t.Errorf("an API response holds the deleted secret's value")
		}
	}
	t.Logf("checked %d API responses, %d bytes of table dumps (%d tables), %d bytes of logs (%d processes)",
		len(texts), dumped, len(tableNames), logged, len(procs))
}
