package schema_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/schema"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("up: %v", err)
	}
	first := tables(t, url)
	for _, want := range []string{"namespaces", "workflows", "workflow_versions", "runs", "task_runs", "attempts", "dead_letters", "events", "schedules", "leadership"} {
		if !slices.Contains(first, want) {
			t.Errorf("after up, table %s is missing (have %s)", want, strings.Join(first, ", "))
		}
	}
	v, dirty, err := schema.Version(ctx, url)
	if err != nil || v == 0 || dirty {
		t.Fatalf("version after up = %d dirty=%v err=%v", v, dirty, err)
	}
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("second up must be a no-op: %v", err)
	}
	if err := schema.Down(ctx, url); err != nil {
		t.Fatalf("down: %v", err)
	}
	if left := tables(t, url); len(left) != 0 {
		t.Fatalf("after down, tables remain: %v", left)
	}
	if v, _, _ := schema.Version(ctx, url); v != 0 {
		t.Fatalf("version after down = %d, want 0", v)
	}
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if again := tables(t, url); !slices.Equal(first, again) {
		t.Fatalf("tables after up/down/up = %v, want %v", again, first)
	}
}

func TestConcurrentUpIsSafe(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- schema.Up(ctx, url) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent up: %v", err)
		}
	}
	if v, dirty, err := schema.Version(ctx, url); err != nil || v == 0 || dirty {
		t.Fatalf("version = %d dirty=%v err=%v", v, dirty, err)
	}
}

func TestBadURL(t *testing.T) {
	if err := schema.Up(context.Background(), "mysql://x/y"); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("err = %v, want a scheme error", err)
	}
}
