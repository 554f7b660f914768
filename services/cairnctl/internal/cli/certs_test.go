package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/tlsconf"
)

func TestCerts(t *testing.T) {
	dir := t.TempDir()
	caDir, out := filepath.Join(dir, "ca"), filepath.Join(dir, "sched")
	if code, _, errOut := run(t, "certs", "ca", "--dir", caDir); code != ExitOK {
		t.Fatalf("certs ca: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "certs", "ca", "--dir", caDir); code != ExitFail || !strings.Contains(errOut, "--force") {
		t.Fatalf("certs ca over an existing CA: exit %d, stderr %q; want a refusal naming --force", code, errOut)
	}
	code, stdout, errOut := run(t, "certs", "issue", "--ca-dir", caDir, "--role", "scheduler", "--name", "s-1",
		"--ip", "127.0.0.1,10.0.0.7", "--dns", "sched-0.cairn", "--out", out, "--days", "30")
	if code != ExitOK {
		t.Fatalf("certs issue: exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, "spiffe://cairn/scheduler/s-1") {
		t.Errorf("stdout lacks the identity:\n%s", stdout)
	}
	ca, err := tlsconf.LoadCA(filepath.Join(caDir, "ca.pem"), filepath.Join(caDir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tlsconf.VerifyPair(ca.Cert, filepath.Join(out, "scheduler.pem"), filepath.Join(out, "scheduler-key.pem"), time.Now(), 29*24*time.Hour)
	if err != nil {
		t.Fatalf("the issued pair: %v", err)
	}
	id, err := tlsconf.IdentityFromCert(cert)
	if err != nil || id != (tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s-1"}) {
		t.Errorf("identity %v, %v", id, err)
	}
	if got := strings.Join(cert.DNSNames, ","); got != "cairn-scheduler,sched-0.cairn" {
		t.Errorf("DNS names %q: want the fixed scheduler name first, then --dns", got)
	}
	if len(cert.IPAddresses) != 2 {
		t.Errorf("IP SANs %v", cert.IPAddresses)
	}
	for name, mode := range map[string]os.FileMode{"": 0o700, "scheduler-key.pem": 0o600, "scheduler.pem": 0o644, "ca.pem": 0o644} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "ca-key.pem")); err == nil {
		t.Error("the CA key was copied into the component's directory")
	}
	code, stdout, _ = run(t, "certs", "show", filepath.Join(out, "scheduler.pem"))
	if code != ExitOK || !strings.Contains(stdout, "spiffe://cairn/scheduler/s-1") || !strings.Contains(stdout, "10.0.0.7") {
		t.Errorf("certs show: exit %d:\n%s", code, stdout)
	}

	// Usage errors name what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs"}, "want a subcommand"},
		{[]string{"certs", "ca"}, "--dir is required"},
		{[]string{"certs", "issue", "--ca-dir", caDir}, "--name, --out, --role required"},
		{[]string{"certs", "issue", "--ca-dir", caDir, "--role", "admin", "--name", "x", "--out", out}, `--role "admin"`},
		{[]string{"certs", "issue", "--ca-dir", caDir, "--role", "worker", "--name", "a/b", "--out", out}, "--name"},
		{[]string{"certs", "issue", "--ca-dir", caDir, "--role", "worker", "--name", "w", "--ip", "nope", "--out", out}, `--ip "nope"`},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d naming %q", tc.args, code, errOut, ExitUsage, tc.want)
		}
	}
	if code, _, errOut := run(t, "certs", "issue", "--ca-dir", filepath.Join(dir, "none"), "--role", "worker", "--name", "w", "--out", out); code != ExitFail || !strings.Contains(errOut, "certs ca --dir") {
		t.Errorf("issue without a CA: exit %d, stderr %q; want a hint to make one", code, errOut)
	}
}
