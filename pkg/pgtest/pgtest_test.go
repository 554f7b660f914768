package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/schema"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.NewPool(t), pgtest.NewPool(t)
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table created in one test database is visible in another")
	}
}

func TestNewDatabaseIsMigrated(t *testing.T) {
	url := pgtest.NewDatabase(t)
	v, dirty, err := schema.Version(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if v == 0 || dirty {
		t.Fatalf("schema version = %d dirty=%v, want a clean applied version", v, dirty)
	}
}
