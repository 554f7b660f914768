package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

func writeConfig(t *testing.T, path string, c ClientConfig) {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chdir moves into dir for the test (cairnctl looks for .cairn/cairnctl.json there).
func chdir(t *testing.T, dir string) {
	t.Helper()
	old, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(old) })
}

func TestClientConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	chdir(t, dir)
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)

	// Nothing anywhere: the default address, plaintext.
	c, file, err := resolveClientConfig("", "", "")
	if err != nil || file != "" || c.Addr != DefaultAddr || c.CAFile != "" {
		t.Fatalf("no configuration: %+v from %q, %v", c, file, err)
	}
	// The XDG file is used when there is no .cairn/cairnctl.json; a relative ca_file is
	// relative to the file.
	xdgToken, devToken, envToken := apitoken.NewSecret(), apitoken.NewSecret(), apitoken.NewSecret()
	writeConfig(t, filepath.Join(xdg, "cairn", ConfigFileName), ClientConfig{Addr: "xdg:1", CAFile: "ca.pem", Token: xdgToken})
	c, file, err = resolveClientConfig("", "", "")
	if err != nil || c.Addr != "xdg:1" || c.CAFile != filepath.Join(xdg, "cairn", "ca.pem") || c.Token != xdgToken {
		t.Fatalf("XDG: %+v from %q, %v", c, file, err)
	}
	// .cairn/cairnctl.json in the current directory comes first.
	writeConfig(t, filepath.Join(dir, ".cairn", ConfigFileName), ClientConfig{Addr: "dev:1", CAFile: "/abs/ca.pem", ServerName: "gw", Token: devToken})
	c, file, _ = resolveClientConfig("", "", "")
	if c.Addr != "dev:1" || c.CAFile != "/abs/ca.pem" || c.ServerName != "gw" || file != filepath.Join(".cairn", ConfigFileName) {
		t.Fatalf(".cairn: %+v from %q", c, file)
	}
	// The environment overrides the file; the flags override the environment.
	t.Setenv("CAIRN_ADDR", "env:1")
	t.Setenv("CAIRN_CA_FILE", "/env/ca.pem")
	t.Setenv("CAIRN_TOKEN", envToken)
	c, _, _ = resolveClientConfig("", "", "")
	if c.Addr != "env:1" || c.CAFile != "/env/ca.pem" || c.Token != envToken {
		t.Fatalf("env: %+v", c)
	}
	c, _, _ = resolveClientConfig("", "flag:1", "/flag/ca.pem")
	if c.Addr != "flag:1" || c.CAFile != "/flag/ca.pem" || c.Token != envToken {
		t.Fatalf("flags: %+v", c)
	}
	t.Setenv("CAIRN_TOKEN", "not-a-token")
	if _, _, err := resolveClientConfig("", "", ""); err == nil || !strings.Contains(err.Error(), "CAIRN_TOKEN is not a Cairn token") {
		t.Errorf("a malformed CAIRN_TOKEN: %v", err)
	}
	t.Setenv("CAIRN_TOKEN", "")
	// --config / CAIRN_CONFIG name a file that must exist.
	explicit := filepath.Join(t.TempDir(), "c.json")
	writeConfig(t, explicit, ClientConfig{Addr: "explicit:1"})
	t.Setenv("CAIRN_ADDR", "")
	t.Setenv("CAIRN_CONFIG", explicit)
	if c, _, _ = resolveClientConfig("", "", ""); c.Addr != "explicit:1" {
		t.Fatalf("CAIRN_CONFIG: %+v", c)
	}
	if _, _, err := resolveClientConfig(filepath.Join(dir, "missing.json"), "", ""); err == nil {
		t.Error("a missing --config file was accepted")
	}
	if err := os.WriteFile(explicit, []byte(`{"adr": "typo:1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := resolveClientConfig("", "", ""); err == nil || !strings.Contains(err.Error(), "adr") {
		t.Errorf("an unknown field: %v, want it named", err)
	}
}

// TestClientTLSAndToken: with a CA, cairnctl talks TLS to the gateway and picks everything up
// from .cairn/cairnctl.json; without it, or with another CA, it fails with a TLS hint.
func TestClientTLSAndToken(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{PublicTLS: true})
	dir := t.TempDir()
	chdir(t, dir)
	writeConfig(t, filepath.Join(dir, ".cairn", ConfigFileName), ClientConfig{Addr: c.GRPCAddr, CAFile: c.CAFile, Token: gatewaytest.AdminToken})
	if code, out, errOut := run(t, "cluster"); code != ExitOK || !strings.Contains(out, "leader") {
		t.Fatalf("cluster through .cairn/cairnctl.json: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := run(t, "cluster", "--config", filepath.Join(t.TempDir(), "none.json")); code == ExitOK {
		t.Error("a missing --config file was accepted")
	}
	writeConfig(t, filepath.Join(dir, ".cairn", ConfigFileName), ClientConfig{Addr: c.GRPCAddr, Token: gatewaytest.AdminToken})
	code, _, errOut := run(t, "cluster")
	if code != ExitFail {
		t.Errorf("plaintext to the TLS gateway: exit %d, stderr %q", code, errOut)
	}
	other := gatewaytest.Start(t, gatewaytest.Options{PublicTLS: true})
	code, _, errOut = run(t, "cluster", "--ca-file", other.CAFile)
	if code != ExitFail || !strings.Contains(errOut, "--ca-file") {
		t.Errorf("another CA: exit %d, stderr %q; want a TLS hint naming --ca-file", code, errOut)
	}

	// The token goes out as authorization metadata on every call.
	seen := make(chan string, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		seen <- strings.Join(md.Get("authorization"), ",")
		return nil
	}))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	fileToken, envToken := apitoken.NewSecret(), apitoken.NewSecret()
	writeConfig(t, filepath.Join(dir, ".cairn", ConfigFileName), ClientConfig{Addr: ln.Addr().String(), Token: fileToken})
	run(t, "cluster")
	if got := <-seen; got != "Bearer "+fileToken {
		t.Errorf("authorization %q, want the file's token", got)
	}
	t.Setenv("CAIRN_TOKEN", envToken)
	run(t, "cluster")
	if got := <-seen; got != "Bearer "+envToken {
		t.Errorf("authorization %q, want CAIRN_TOKEN", got)
	}
	// Never in plaintext off loopback.
	code, _, errOut = run(t, "cluster", "--addr", "cairn.example:7070")
	if code == ExitOK || !strings.Contains(errOut, "plaintext") {
		t.Errorf("a token to a remote plaintext address: exit %d, stderr %q", code, errOut)
	}
}
