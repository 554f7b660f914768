package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/pgtest"
	"github.com/cairn-io/cairn/pkg/schema"
)

// rows000003 writes one of everything in the schema of migration 000003: a workflow with two
// versions and a schedule, a run with an idempotency key, its task runs, an attempt, an event
// and a dead letter.
const rows000003 = `
INSERT INTO workflows (name, description, latest_version, version_count) VALUES ('etl', 'd', 2, 2);
INSERT INTO workflow_versions (workflow, version, hash, yaml, compiled) VALUES
    ('etl', 1, repeat('a', 64), 'name: etl', ''), ('etl', 2, repeat('b', 64), 'name: etl # 2', '');
INSERT INTO schedules (workflow, cron, next_fire_at) VALUES ('etl', '0 2 * * *', now());
INSERT INTO runs (id, workflow, version, state, idempotency_key, trigger)
    VALUES ('00000000-0000-0000-0000-000000000001', 'etl', 1, 'RUNNING', 'k1', 'manual');
INSERT INTO task_runs (run_id, task_id, state, attempt, fencing_token, worker_id) VALUES
    ('00000000-0000-0000-0000-000000000001', 'a', 'DEAD_LETTERED', 1, 4294967297, ''),
    ('00000000-0000-0000-0000-000000000001', 'b', 'PENDING', 0, 0, '');
INSERT INTO attempts (id, run_id, task_id, number, fencing_token, worker_id, state, failure_kind, finished_at)
    VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'a', 1, 4294967297,
        'w1', 'FAILED', 'exit_code', now());
INSERT INTO events (run_id, task_id, kind) VALUES ('00000000-0000-0000-0000-000000000001', 'a', 'task_state');
INSERT INTO dead_letters (id, run_id, task_id, workflow)
    VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-000000000001', 'a', 'etl');
`

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) error {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	return err
}

func scalar[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// Rows written before migration 000004 all land in the namespace 'default', keep their keys
// and references, and the migration reverts and re-applies over them.
func TestNamespacesMigrationMovesExistingRowsToDefault(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	if err := schema.Migrate(ctx, url, 3); err != nil {
		t.Fatalf("migrate to 3: %v", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := exec(t, conn, rows000003); err != nil {
		t.Fatalf("write rows in schema 3: %v", err)
	}

	check := func(round string) {
		t.Helper()
		if err := schema.Migrate(ctx, url, 4); err != nil {
			t.Fatalf("%s: migrate to 4: %v", round, err)
		}
		for _, table := range []string{"workflows", "workflow_versions", "runs", "dead_letters", "schedules"} {
			n := scalar[int](t, conn, `SELECT count(*) FROM `+table)
			inDefault := scalar[int](t, conn, `SELECT count(*) FROM `+table+` WHERE namespace = 'default'`)
			if n == 0 || inDefault != n {
				t.Errorf("%s: %s has %d rows, %d of them in 'default'", round, table, n, inDefault)
			}
		}
		if got := scalar[string](t, conn, `SELECT string_agg(name, ',' ORDER BY name) FROM namespaces`); got != "default" {
			t.Errorf("%s: namespaces = %q, want default", round, got)
		}
		// No column keeps a default: a writer that forgets the namespace fails.
		if err := exec(t, conn, `INSERT INTO workflows (name, latest_version, version_count) VALUES ('x', 1, 1)`); err == nil ||
			!strings.Contains(err.Error(), "namespace") {
			t.Errorf("%s: a workflow without a namespace: err = %v, want a not-null violation", round, err)
		}
		// The same name and idempotency key in another namespace are other rows.
		for _, sql := range []string{
			`INSERT INTO namespaces (name) VALUES ('team-a')`,
			`BEGIN`,
			`INSERT INTO workflows (namespace, name, latest_version, version_count) VALUES ('team-a', 'etl', 1, 1)`,
			`INSERT INTO workflow_versions (namespace, workflow, version, hash, yaml, compiled)
				VALUES ('team-a', 'etl', 1, repeat('a', 64), 'name: etl', '')`,
			`COMMIT`,
			`INSERT INTO runs (namespace, id, workflow, version, state, idempotency_key, trigger)
				VALUES ('team-a', '00000000-0000-0000-0000-000000000002', 'etl', 1, 'PENDING', 'k1', 'manual')`,
		} {
			if err := exec(t, conn, sql); err != nil {
				t.Fatalf("%s: %s: %v", round, sql, err)
			}
		}
		// A run cannot execute another namespace's version; a namespace that holds something
		// cannot be deleted.
		if err := exec(t, conn, `INSERT INTO runs (namespace, id, workflow, version, state, trigger)
				VALUES ('team-a', '00000000-0000-0000-0000-000000000003', 'etl', 2, 'PENDING', 'manual')`); err == nil {
			t.Errorf("%s: a run of team-a/etl v2 (a version only 'default' has) was accepted", round)
		}
		if err := exec(t, conn, `DELETE FROM namespaces WHERE name = 'team-a'`); err == nil {
			t.Errorf("%s: deleting a namespace that holds a workflow and a run succeeded", round)
		}

		// Down refuses while another namespace holds data, and changes nothing: the file runs
		// as one transaction. golang-migrate still records the failed step as version 3,
		// dirty (as after any failed migration); forcing the version back to 4 is the way out.
		if err := schema.Migrate(ctx, url, 3); err == nil || !strings.Contains(err.Error(), "team-a") {
			t.Fatalf("%s: down with data in team-a: err = %v, want a refusal naming team-a", round, err)
		}
		if n := scalar[int](t, conn, `SELECT count(*) FROM runs WHERE namespace = 'team-a'`); n != 1 {
			t.Fatalf("%s: after the refused down, team-a holds %d runs, want 1", round, n)
		}
		if err := exec(t, conn, `UPDATE schema_migrations SET version = 4, dirty = false`); err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{
			`DELETE FROM runs WHERE namespace = 'team-a'`,
			`DELETE FROM workflows WHERE namespace = 'team-a'`,
			`DELETE FROM namespaces WHERE name = 'team-a'`,
		} {
			if err := exec(t, conn, sql); err != nil {
				t.Fatalf("%s: %s: %v", round, sql, err)
			}
		}
		if err := schema.Migrate(ctx, url, 3); err != nil {
			t.Fatalf("%s: down to 3: %v", round, err)
		}
		// Back in schema 3: the rows are there, keyed as before.
		if n := scalar[int](t, conn, `SELECT count(*) FROM runs r JOIN workflow_versions v ON v.workflow = r.workflow
				AND v.version = r.version JOIN dead_letters d ON d.run_id = r.id WHERE r.idempotency_key = 'k1'`); n != 1 {
			t.Errorf("%s: after down, the run with its version and dead letter: %d rows, want 1", round, n)
		}
		if err := exec(t, conn, `INSERT INTO runs (id, workflow, version, state, idempotency_key, trigger)
				VALUES ('00000000-0000-0000-0000-000000000004', 'etl', 2, 'PENDING', 'k1', 'manual')`); err == nil {
			t.Errorf("%s: after down, the idempotency key is not unique per workflow again", round)
		}
	}
	check("first up")
	check("second up")
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("final up: %v", err)
	}
}
