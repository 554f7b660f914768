package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/schema"
)

func TestMigrationsUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
			AND tablename <> 'schema_migrations'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	objects := func() int { // functions, sequences, indexes left behind
		var n int
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
				WHERE s.nspname = 'public')
			+ (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
				WHERE s.nspname = 'public' AND c.relname NOT LIKE 'schema_migrations%')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tables(); n != 0 {
		t.Fatalf("empty database has %d tables", n)
	}
	for round := 1; round <= 2; round++ {
		if err := schema.Up(ctx, url); err != nil {
			t.Fatalf("round %d up: %v", round, err)
		}
		if n := tables(); n != 14 {
			t.Fatalf("round %d: %d tables after up, want 14", round, n)
		}
		// So does the default namespace.
		var ns string
		if err := conn.QueryRow(ctx, `SELECT string_agg(name, ',') FROM namespaces`).Scan(&ns); err != nil || ns != model.DefaultNamespace {
			t.Fatalf("round %d: namespaces %q, %v; want only %s", round, ns, err, model.DefaultNamespace)
		}
		// The single leadership row exists after up.
		var epoch int64
		if err := conn.QueryRow(ctx, `SELECT epoch FROM leadership`).Scan(&epoch); err != nil || epoch != 0 {
			t.Fatalf("round %d: leadership epoch %d, %v", round, epoch, err)
		}
		if err := schema.Down(ctx, url); err != nil {
			t.Fatalf("round %d down: %v", round, err)
		}
		if n, o := tables(), objects(); n != 0 || o != 0 {
			t.Fatalf("round %d: %d tables and %d other objects left after down", round, n, o)
		}
	}
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("final up: %v", err)
	}
}

// The CHECK constraints accept exactly the values package model declares.
func TestSchemaChecksMatchModel(t *testing.T) {
	e := newEnv(t)
	e.workflow("wf")
	r := e.run("wf", "a")
	tok := e.toRunning(r.ID, "a", model.TaskPending, 0)

	try := func(sql string, v any) error {
		tx, err := e.pool.Begin(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(e.ctx)
		_, err = tx.Exec(e.ctx, sql, v)
		return err
	}
	for _, s := range model.RunStates {
		if err := try(`UPDATE runs SET state = $1`, string(s)); err != nil {
			t.Errorf("run state %s rejected: %v", s, err)
		}
	}
	for _, s := range model.TaskStates {
		// next_attempt_at is required exactly in RETRY_WAIT; give it one there.
		sql := `UPDATE task_runs SET state = $1, next_attempt_at = CASE WHEN $1 = 'RETRY_WAIT' THEN now() END`
		if err := try(sql, string(s)); err != nil {
			t.Errorf("task state %s rejected: %v", s, err)
		}
	}
	for _, s := range model.AttemptStates {
		sql := `UPDATE attempts SET state = $1, finished_at = CASE WHEN $1 IN ('ASSIGNED', 'RUNNING') THEN NULL ELSE now() END`
		if err := try(sql, string(s)); err != nil {
			t.Errorf("attempt state %s rejected: %v", s, err)
		}
	}
	for _, k := range model.FailureKinds {
		if err := try(`UPDATE attempts SET failure_kind = $1`, string(k)); err != nil {
			t.Errorf("failure kind %q rejected: %v", k, err)
		}
	}
	for _, tr := range model.Triggers {
		if err := try(`UPDATE runs SET trigger = $1`, string(tr)); err != nil {
			t.Errorf("trigger %s rejected: %v", tr, err)
		}
	}
	for _, bad := range []struct{ sql, v string }{
		{`UPDATE runs SET state = $1`, "running"},
		{`UPDATE task_runs SET state = $1`, "BOGUS"},
		{`UPDATE attempts SET state = $1`, "DONE"},
		{`UPDATE attempts SET failure_kind = $1`, "oom"},
		{`UPDATE runs SET trigger = $1`, "cron"},
	} {
		if err := try(bad.sql, bad.v); err == nil {
			t.Errorf("%s with %q accepted", bad.sql, bad.v)
		}
	}
	_ = tok
}
