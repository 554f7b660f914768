package envflag_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/envflag"
)

type cfg struct {
	db      string
	n       int
	ttl     envflag.Duration
	eps     []string
	verbose bool
}

func newSet(env map[string]string) (*envflag.Set, *cfg) {
	c := &cfg{}
	s := envflag.New("cairn-test", "A test binary.")
	s.SetLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	s.String(&c.db, "database-url", "CAIRN_DATABASE_URL", "postgres://localhost/cairn", "PostgreSQL URL")
	s.Int(&c.n, "concurrency", "CAIRN_WORKER_CONCURRENCY", 4, "slots")
	s.Duration(&c.ttl, "lease-ttl", "CAIRN_LEASE_TTL", envflag.Duration(10*time.Second), "lease TTL")
	s.List(&c.eps, "etcd-endpoints", "CAIRN_ETCD_ENDPOINTS", []string{"http://127.0.0.1:2379"}, "etcd")
	s.Bool(&c.verbose, "verbose", "", false, "more logs")
	return s, c
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want cfg
	}{
		{"defaults", nil, nil, cfg{db: "postgres://localhost/cairn", n: 4, ttl: envflag.Duration(10 * time.Second), eps: []string{"http://127.0.0.1:2379"}}},
		{"env", map[string]string{"CAIRN_WORKER_CONCURRENCY": "8", "CAIRN_ETCD_ENDPOINTS": "http://a:1, http://b:2", "CAIRN_LEASE_TTL": "3s"}, nil,
			cfg{db: "postgres://localhost/cairn", n: 8, ttl: envflag.Duration(3 * time.Second), eps: []string{"http://a:1", "http://b:2"}}},
		{"flag beats env", map[string]string{"CAIRN_WORKER_CONCURRENCY": "8"}, []string{"--concurrency=2", "--verbose"},
			cfg{db: "postgres://localhost/cairn", n: 2, ttl: envflag.Duration(10 * time.Second), eps: []string{"http://127.0.0.1:2379"}, verbose: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newSet(tt.env)
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if c.db != tt.want.db || c.n != tt.want.n || c.ttl != tt.want.ttl || c.verbose != tt.want.verbose || strings.Join(c.eps, ",") != strings.Join(tt.want.eps, ",") {
				t.Fatalf("got %+v, want %+v", *c, tt.want)
			}
		})
	}
}

func TestBadEnvNamesTheVariable(t *testing.T) {
	for env, want := range map[string]string{
		"CAIRN_WORKER_CONCURRENCY": "CAIRN_WORKER_CONCURRENCY",
		"CAIRN_LEASE_TTL":          "not a duration",
	} {
		s, _ := newSet(map[string]string{env: "ten"})
		err := s.Parse(nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s=ten: err = %v, want it to mention %q", env, err, want)
		}
	}
	s, _ := newSet(map[string]string{"CAIRN_LEASE_TTL": "-1s"})
	if err := s.Parse(nil); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative duration: err = %v", err)
	}
}

func TestUsageListsEnvAndDefaults(t *testing.T) {
	s, _ := newSet(nil)
	var b bytes.Buffer
	s.PrintUsage(&b)
	for _, want := range []string{"A test binary.", "--database-url", "[CAIRN_DATABASE_URL]", "(default 10s)", "--verbose"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, b.String())
		}
	}
}
