package loopback

import (
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	yes := []string{"127.0.0.1:7070", "127.1.2.3:1", "[::1]:80", "localhost:9", "LocalHost.:9", "db.localhost:5432"}
	no := []string{":7070", "0.0.0.0:7070", "[::]:1", "10.0.0.1:1", "example.com:1", "localhost.example.com:1",
		"127.0.0.1", "", "[fe80::1%lo]:1", "[::ffff:10.0.0.1]:1"}
	for _, a := range yes {
		if !Addr(a) {
			t.Errorf("Addr(%q) = false, want true", a)
		}
	}
	for _, a := range no {
		if Addr(a) {
			t.Errorf("Addr(%q) = true, want false", a)
		}
	}
	urls := map[string]bool{
		"http://127.0.0.1:2379": true, "https://localhost:2379": true, "unix:///run/etcd.sock": true,
		"127.0.0.1:2379": true, "http://etcd:2379": false, "https://10.0.0.5:2379": false, "http://:2379": false,
	}
	for u, want := range urls {
		if URL(u) != want {
			t.Errorf("URL(%q) = %v, want %v", u, !want, want)
		}
	}
	for h, want := range map[string]bool{"/tmp/pg": true, "127.0.0.1": true, "::1": true, "[::1]": true, "db": false} {
		if Host(h) != want {
			t.Errorf("Host(%q) = %v, want %v", h, !want, want)
		}
	}
}

func TestCheckNamesEveryBadSetting(t *testing.T) {
	err := Check([]Setting{
		{Flag: "--grpc-addr (CAIRN_GRPC_ADDR)", Value: "0.0.0.0:7071"},
		{Flag: "--ops-addr (CAIRN_OPS_ADDR)", Value: "127.0.0.1:9091"},
		{Flag: "--ops-addr2", Value: ""},
		{Flag: "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)", Value: "http://etcd:2379", Kind: KindURL},
	})
	if err == nil {
		t.Fatal("Check accepted non-loopback settings")
	}
	for _, want := range []string{"--grpc-addr (CAIRN_GRPC_ADDR)=0.0.0.0:7071", "--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)=http://etcd:2379"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "ops-addr") {
		t.Errorf("error %q names a loopback setting", err)
	}
	if err := Check([]Setting{{Flag: "a", Value: "127.0.0.1:1"}, {Flag: "b", Value: "/sock", Kind: KindHost}}); err != nil {
		t.Errorf("Check of loopback settings: %v", err)
	}
}
