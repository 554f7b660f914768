package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/etcdtest"
)

func TestPutGet(t *testing.T) {
	c := etcdtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "/cairn/test", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := c.Get(ctx, "/cairn/test")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get returned %v, want one key with value v", resp.Kvs)
	}
}

func TestServersAreIsolated(t *testing.T) {
	a, b := etcdtest.Start(t), etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Client(t).Put(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	resp, err := b.Client(t).Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("second server sees the first server's key: %v", resp.Kvs)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	s := etcdtest.Start(t)
	s.Stop()
	s.Stop() // and once more by the test cleanup
}
