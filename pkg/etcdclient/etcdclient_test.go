package etcdclient

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-io/cairn/pkg/envflag"
	"github.com/cairn-io/cairn/pkg/etcdlocal"
	"github.com/cairn-io/cairn/pkg/tlsconf"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client certificate into dir.
func pki(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	c, err := tlsconf.NewCA(tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err = c.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := c.Issue(tlsconf.CertRequest{ // a plain server certificate: etcd is no Cairn identity
		IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err = srv.WriteFiles(dir, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := c.Issue(tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleWorker, Name: "w"}})
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err = cli.WriteFiles(dir, "client")
	if err != nil {
		t.Fatal(err)
	}
	return
}

// put writes a key; a refused connection shows as a timeout, so expected refusals are given
// a short one.
func put(endpoints []string, s Security) error {
	timeout := 5 * time.Second
	if s.CAFile == "" || s.CertFile == "" || strings.Contains(s.CAFile, "other") || strings.Contains(s.CertFile, "other") || s.Password == "wrong" {
		timeout = 700 * time.Millisecond
	}
	c, err := New(endpoints, s)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = c.Put(ctx, "/cairn/x", "y")
	return err
}

func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, dir)
	srv, err := etcdlocal.Start(etcdlocal.Config{Dir: filepath.Join(dir, "data"), NoFsync: true,
		TLS: &etcdlocal.TLS{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	eps := srv.Endpoints()
	if !strings.HasPrefix(eps[0], "https://") {
		t.Fatalf("endpoints %v", eps)
	}
	good := Security{CAFile: ca, CertFile: cliCert, KeyFile: cliKey}
	if err := put(eps, good); err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	if err := put(eps, Security{CAFile: ca}); err == nil {
		t.Error("without a client certificate etcd answered")
	}
	other := filepath.Join(t.TempDir(), "other")
	oca, _, _, ocert, okey := pki(t, other)
	if err := put(eps, Security{CAFile: oca, CertFile: cliCert, KeyFile: cliKey}); err == nil {
		t.Error("a client trusting another CA accepted etcd's certificate")
	}
	if err := put(eps, Security{CAFile: ca, CertFile: ocert, KeyFile: okey}); err == nil {
		t.Error("etcd accepted a client certificate of another CA")
	}

	// User and password on top of TLS.
	admin, err := New(eps, good)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "cairn", "s3cret"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "cairn"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "cairn", "/cairn/", clientv3.GetPrefixRangeEnd("/cairn/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "cairn", "cairn"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up etcd auth: %v", err)
		}
	}
	// etcd authenticates a TLS client by its certificate's common name when no user is given;
	// give a user, and the password decides.
	withUser := good
	withUser.Username, withUser.Password = "cairn", "s3cret"
	if err := put(eps, withUser); err != nil {
		t.Fatalf("user and password: %v", err)
	}
	withUser.Password = "wrong"
	if err := put(eps, withUser); err == nil {
		t.Error("a wrong password was accepted")
	}
}

func TestValidateNamesFlags(t *testing.T) {
	for _, tc := range []struct {
		s    Security
		eps  []string
		want string
	}{
		{Security{CertFile: "c"}, nil, "--etcd-key"},
		{Security{Username: "u"}, nil, "CAIRN_ETCD_PASSWORD"},
		{Security{Password: "p"}, nil, "--etcd-username"},
		{Security{CAFile: "ca"}, []string{"http://etcd:2379"}, "use https://"},
	} {
		err := tc.s.Validate(tc.eps)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v, %v) = %v; want an error naming %s", tc.s, tc.eps, err, tc.want)
		}
	}
}

func TestPasswordFromEnvOrFile(t *testing.T) {
	parse := func(args []string, env map[string]string) (Security, error) {
		var s Security
		fs := envflag.New("x", "")
		fs.FlagSet().SetOutput(io.Discard)
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		fs.SetLookupEnv(lookup)
		f := AddFlags(fs, &s)
		if err := fs.Parse(args); err != nil {
			return s, err
		}
		return s, f.Finish(lookup)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := parse([]string{"--etcd-username", "u", "--etcd-password-file", pwFile}, nil)
	if err != nil || s.Password != "from-file" {
		t.Errorf("file: %+v, %v", s, err)
	}
	s, err = parse(nil, map[string]string{"CAIRN_ETCD_USERNAME": "u", "CAIRN_ETCD_PASSWORD": "from-env"})
	if err != nil || s.Password != "from-env" || s.Username != "u" {
		t.Errorf("env: %+v, %v", s, err)
	}
	if _, err := parse([]string{"--etcd-password-file", pwFile}, map[string]string{"CAIRN_ETCD_PASSWORD": "x"}); err == nil {
		t.Error("both the variable and the file were accepted")
	}
	if _, err := parse([]string{"--etcd-password", "x"}, nil); err == nil {
		t.Error("a password flag exists: passwords must not be in argv")
	}
}
