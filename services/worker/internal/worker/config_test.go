package worker

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/egress"
	"github.com/cairn-io/cairn/pkg/executor"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseFlagsDefaults(t *testing.T) {
	c, err := ParseFlags(nil, env(map[string]string{"CAIRN_INSECURE": "true"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != DefaultConcurrency || c.Pool != DefaultPool || c.LeaseTTL != DefaultLeaseTTL ||
		c.DrainTimeout != DefaultDrainTimeout || c.OpsAddr != DefaultOpsAddr || c.EtcdPrefix != "/cairn/" ||
		len(c.EtcdEndpoints) != 1 || c.EtcdEndpoints[0] != DefaultEtcdEndpoint || c.ID != DefaultID() ||
		c.OutputCap != executor.DefaultOutputCap || len(c.Labels) != 0 || len(c.WorkdirRoots) != 0 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestParseFlagsEnvAndFlags(t *testing.T) {
	c, err := ParseFlags([]string{"--concurrency", "8", "--labels", "zone=a, gpu=yes"}, env(map[string]string{
		"CAIRN_WORKER_CONCURRENCY": "2", "CAIRN_WORKER_ID": "w-7", "CAIRN_LEASE_TTL": "3s",
		"CAIRN_WORKDIR_ROOTS": "/srv,/data", "CAIRN_ETCD_ENDPOINTS": "http://127.0.0.1:1,http://localhost:2", "CAIRN_INSECURE": "true",
		"CAIRN_EGRESS_ALLOW": "10.20.0.0/16, fd00:1::/64",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 8 || c.ID != "w-7" || c.LeaseTTL != 3*time.Second || c.Labels["zone"] != "a" ||
		c.Labels["gpu"] != "yes" || len(c.WorkdirRoots) != 2 || len(c.EtcdEndpoints) != 2 ||
		egress.FormatAllowList(c.EgressAllow) != "10.20.0.0/16,fd00:1::/64" {
		t.Fatalf("config = %+v", c)
	}
	c, err = ParseFlags([]string{"--egress-allow", "127.0.0.0/8,::1/128", "--insecure"}, env(map[string]string{"CAIRN_EGRESS_ALLOW": "10.0.0.0/8"}), nil)
	if err != nil || egress.FormatAllowList(c.EgressAllow) != "127.0.0.0/8,::1/128" {
		t.Fatalf("--egress-allow over CAIRN_EGRESS_ALLOW: %v, %v", c.EgressAllow, err)
	}
}

func TestParseFlagsErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{args: []string{"--labels", "a,=b"}, want: []string{`label "a" is not key=value`, `label "=b" has an empty key`}},
		{args: []string{"--concurrency", "0", "--lease-ttl", "500ms"}, want: []string{"--concurrency 0", "--lease-ttl 500ms"}},
		{args: []string{"--etcd-prefix", "/x", "--id", "bad id"}, want: []string{`--etcd-prefix "/x"`, `--id "bad id"`}},
		{args: []string{"--workdir-roots", "rel", "--log-format", "xml", "--log-level", "loud"}, want: []string{`"rel" is not an absolute`, `--log-format "xml"`, `--log-level "loud"`}},
		{args: []string{"--ops-addr", "nope"}, want: []string{`--ops-addr "nope"`}},
		{args: []string{"extra"}, want: []string{`unexpected arguments ["extra"]`}},
		{env: map[string]string{"CAIRN_DRAIN_TIMEOUT": "soon"}, want: []string{"CAIRN_DRAIN_TIMEOUT"}},
		{args: []string{"--egress-allow", "127.0.0.1"}, want: []string{`--egress-allow (CAIRN_EGRESS_ALLOW): "127.0.0.1" is an address, not a CIDR (write 127.0.0.1/32)`}},
		{env: map[string]string{"CAIRN_EGRESS_ALLOW": "10.0.0.0/8,10.1.2.3/16"}, want: []string{`--egress-allow (CAIRN_EGRESS_ALLOW): "10.1.2.3/16": 10.1.2.3/16 has host bits set`}},
		{env: map[string]string{"CAIRN_EGRESS_ALLOW": "private"}, want: []string{`--egress-allow (CAIRN_EGRESS_ALLOW): "private" is not a CIDR`}},
		{want: []string{"internal TLS is not configured", "--tls-cert (CAIRN_TLS_CERT)", "--tls-ca (CAIRN_TLS_CA)", "--insecure (CAIRN_INSECURE)"}},
		{args: []string{"--insecure", "--etcd-endpoints", "http://etcd:2379", "--ops-addr", "0.0.0.0:9092"},
			want: []string{"loopback", "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)=http://etcd:2379", "--ops-addr (CAIRN_OPS_ADDR)=0.0.0.0:9092"}},
		{args: []string{"--tls-cert", "/nonexistent.pem"}, want: []string{"needs all of --tls-cert"}},
	} {
		_, err := ParseFlags(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil {
			t.Errorf("%v %v: no error", tc.args, tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v %v: error %q does not mention %q", tc.args, tc.env, err, w)
			}
		}
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := ParseFlags([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"--etcd-endpoints", "CAIRN_ETCD_ENDPOINTS", "--concurrency", "CAIRN_WORKER_CONCURRENCY",
		"--pool", "--labels", "--lease-ttl", "CAIRN_LEASE_TTL", "--drain-timeout", "CAIRN_DRAIN_TIMEOUT", "--ops-addr",
		"--workdir-roots", "--egress-allow", "CAIRN_EGRESS_ALLOW", "--output-cap", "--log-format", "--log-level", "--otlp-endpoint", "CAIRN_OTLP_ENDPOINT", "--id", "CAIRN_WORKER_ID"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help does not mention %s:\n%s", w, out.String())
		}
	}
}

func TestDefaultIDIsAValidID(t *testing.T) {
	if id := DefaultID(); !idPattern.MatchString(id) {
		t.Fatalf("DefaultID() = %q, not a valid id", id)
	}
}

func TestTrimOutputsKeepsEveryResult(t *testing.T) {
	shellRes := &cairnv1.AttemptResult{ResultId: "s", Output: []byte("0123456789")}
	status := int32(200)
	httpRes := &cairnv1.AttemptResult{ResultId: "h", Output: []byte("abcdefghij"), HttpStatus: &status}
	small := &cairnv1.AttemptResult{ResultId: "x", Output: []byte("ok")}
	in := []*cairnv1.AttemptResult{shellRes, httpRes, small}
	if got := trimOutputs(in, 100); got[0] != shellRes || got[1] != httpRes || got[2] != small {
		t.Fatalf("results within the budget were changed: %v", got)
	}
	got := trimOutputs(in, 12) // 4 bytes each
	if len(got) != 3 || string(got[0].GetOutput()) != "6789" || !got[0].GetOutputTruncated() ||
		string(got[1].GetOutput()) != "abcd" || !got[1].GetOutputTruncated() || got[2] != small {
		t.Fatalf("trimmed = %v", got)
	}
	if string(shellRes.GetOutput()) != "0123456789" || shellRes.GetOutputTruncated() {
		t.Fatal("trimOutputs modified the outbox's result")
	}
}

func TestToResultAppliesTheLeadersOutputCap(t *testing.T) {
	a := &cairnv1.Assignment{AttemptId: "a", RunId: "r", TaskId: "t", FencingToken: 1}
	res := &executor.Result{Succeeded: false, Failure: executor.FailureTimeout, ExitCode: -1, Output: []byte("0123456789"),
		Error: "attempt timed out after 1s", Started: time.Now(), Finished: time.Now()}
	r := toResult("id", a, executor.TypeShell, res, 3)
	if string(r.GetOutput()) != "789" || !r.GetOutputTruncated() || r.ExitCode != nil || r.HttpStatus != nil ||
		r.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_TIMEOUT || r.GetOutcome() != cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED {
		t.Fatalf("result = %v", r)
	}
	if r.GetNoRetry() {
		t.Error("no_retry set for a timeout")
	}
	denied := &executor.Result{Failure: executor.FailureInternal, NoRetry: true, ExitCode: -1,
		Error: "egress denied: 169.254.169.254 is link-local (169.254.0.0/16; allow it with --egress-allow): GET http://169.254.169.254/"}
	if r := toResult("id", a, executor.TypeHTTP, denied, 0); !r.GetNoRetry() || r.GetFailureKind() != cairnv1.FailureKind_FAILURE_KIND_INTERNAL ||
		r.GetError() != denied.Error {
		t.Errorf("egress refusal: %v", r)
	}
	res = &executor.Result{Succeeded: true, ExitCode: -1, HTTPStatus: 204, Output: []byte("0123456789")}
	r = toResult("id", a, executor.TypeHTTP, res, 4)
	if string(r.GetOutput()) != "0123" || r.GetHttpStatus() != 204 || r.GetOutcome() != cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED {
		t.Fatalf("result = %v", r)
	}
}

func TestTaskUserRules(t *testing.T) {
	parse := func(args ...string) error {
		_, err := ParseFlags(args, env(nil), &bytes.Buffer{})
		return err
	}
	if err := parse("--insecure", "--task-user", "no-such-user-cairn"); err == nil || !strings.Contains(err.Error(), `--task-user (CAIRN_TASK_USER) "no-such-user-cairn"`) {
		t.Errorf("an unknown task user: %v", err)
	}
	if os.Geteuid() != 0 {
		if err := parse("--insecure", "--task-user", "nobody"); err == nil || !strings.Contains(err.Error(), "needs the worker to run as root") {
			t.Errorf("another task user without root: %v", err)
		}
		return
	}
	// As root: without --task-user the worker refuses to start (but for loopback --insecure).
	if err := parse("--tls-cert", "x.pem", "--tls-key", "x-key.pem", "--tls-ca", "ca.pem"); err == nil ||
		!strings.Contains(err.Error(), "set --task-user (CAIRN_TASK_USER)") {
		t.Errorf("root without --task-user: %v, want it named", err)
	}
	if err := parse("--insecure"); err != nil {
		t.Errorf("root in insecure mode without --task-user: %v", err)
	}
	for _, u := range []string{"nobody", "65534", "root"} {
		if err := parse("--insecure", "--task-user", u); err != nil {
			t.Errorf("--task-user %s: %v", u, err)
		}
	}
	c := Config{Insecure: true, TaskUser: "nobody"}
	id, err := c.taskUser()
	if err != nil || id.cred == nil || id.cred.Uid == 0 || id.cred.Gid == 0 {
		t.Fatalf("nobody: %+v, %v", id, err)
	}
	for _, g := range id.cred.Groups {
		if g == 0 {
			t.Errorf("the task user keeps group 0: %v", id.cred.Groups)
		}
	}
}
