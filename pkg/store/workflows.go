package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
)

// workflowName is the rule of workflow and namespace names (pkg/dag's, docs/dag-format.md).
var workflowName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

const versionCols = `namespace, workflow, version, hash, yaml, compiled, created_at`

func scanVersion(row pgx.Row) (model.WorkflowVersion, error) {
	var v model.WorkflowVersion
	err := row.Scan(&v.Namespace, &v.Workflow, &v.Version, &v.Hash, &v.YAML, &v.Compiled, &v.CreatedAt)
	return v, err
}

const workflowCols = `namespace, name, description, latest_version, created_at, updated_at`

func scanWorkflow(row pgx.Row) (model.Workflow, error) {
	var w model.Workflow
	err := row.Scan(&w.Namespace, &w.Name, &w.Description, &w.LatestVersion, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// PutVersion stores yaml as a version of workflow in namespace ns and makes it the latest.
// The version is identified by the SHA-256 of yaml: submitting identical YAML again returns
// the existing version (created = false) and makes it the latest again; new YAML gets the
// next version number. Concurrent calls for one workflow serialise on its row, so identical
// YAML submitted concurrently creates exactly one version. compiled is stored as given. An
// unknown namespace (or one deleted concurrently) is ErrNotFound.
func (s *Store) PutVersion(ctx context.Context, epoch int64, ns, workflow, description, yaml string, compiled []byte) (v model.WorkflowVersion, created bool, err error) {
	if err := checkNamespace(ns); err != nil {
		return v, false, fmt.Errorf("put version: %w", err)
	}
	if !workflowName.MatchString(workflow) {
		return v, false, invalidf("put version: workflow name %q must match %s", workflow, workflowName)
	}
	if compiled == nil {
		compiled = []byte{}
	}
	hash := model.HashYAML(yaml)
	err = s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		// The upsert locks the workflow row: concurrent puts of one workflow queue here.
		var count int
		var inserted bool
		// A new workflow's row references its namespace (FOR KEY SHARE): a namespace deleted
		// meanwhile fails the foreign key, a deletion waits for this transaction.
		if err := tx.QueryRow(ctx, `
			INSERT INTO workflows (namespace, name, description, latest_version, version_count)
			VALUES ($1, $2, $3, 1, 1)
			ON CONFLICT (namespace, name) DO UPDATE SET updated_at = now()
			RETURNING version_count, xmax = 0`, ns, workflow, description).Scan(&count, &inserted); err != nil {
			if isForeignKeyViolation(err, "workflows_namespace_fkey") {
				return namespaceNotFound(ns)
			}
			return fmt.Errorf("lock workflow: %w", err)
		}
		if !inserted {
			existing, err := scanVersion(tx.QueryRow(ctx,
				`SELECT `+versionCols+` FROM workflow_versions WHERE namespace = $1 AND workflow = $2 AND hash = $3`,
				ns, workflow, hash))
			switch {
			case err == nil:
				v, created = existing, false
				_, err = tx.Exec(ctx, `UPDATE workflows SET latest_version = $3, description = $4, updated_at = now()
					WHERE namespace = $1 AND name = $2`, ns, workflow, v.Version, description)
				return err
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("find version by hash: %w", err)
			}
			count++
		}
		var err error
		v, err = scanVersion(tx.QueryRow(ctx, `
			INSERT INTO workflow_versions (namespace, workflow, version, hash, yaml, compiled)
			VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+versionCols, ns, workflow, count, hash, yaml, compiled))
		if err != nil {
			return fmt.Errorf("insert version %d: %w", count, err)
		}
		created = true
		_, err = tx.Exec(ctx, `UPDATE workflows SET latest_version = $3, version_count = $3, description = $4,
			updated_at = now() WHERE namespace = $1 AND name = $2`, ns, workflow, count, description)
		return err
	})
	if err != nil {
		return model.WorkflowVersion{}, false, fmt.Errorf("put version of workflow %s/%s: %w", ns, workflow, err)
	}
	return v, created, nil
}

// GetWorkflow returns the workflow named name in namespace ns.
func (s *Store) GetWorkflow(ctx context.Context, ns, name string) (model.Workflow, error) {
	w, err := scanWorkflow(s.pool.QueryRow(ctx, `SELECT `+workflowCols+` FROM workflows WHERE namespace = $1 AND name = $2`,
		ns, name))
	if err != nil {
		return w, fmt.Errorf("get workflow %s/%s: %w", ns, name, notFound(err))
	}
	return w, nil
}

// ListWorkflows lists the workflows of namespace ns by name.
func (s *Store) ListWorkflows(ctx context.Context, ns string, page PageRequest) (ws []model.Workflow, next string, err error) {
	query := fmt.Sprintf("workflows|%q", ns)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	after := ""
	if key != nil {
		after = key.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+workflowCols+` FROM workflows WHERE namespace = $1 AND name > $2
		ORDER BY name LIMIT $3`, ns, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	ws, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.Workflow, error) { return scanWorkflow(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	if len(ws) > limit {
		ws = ws[:limit]
		next = encodeToken(pageKey{Query: query, ID: ws[limit-1].Name})
	}
	return ws, next, nil
}

// GetVersion returns version of workflow in namespace ns; version 0 means the latest.
func (s *Store) GetVersion(ctx context.Context, ns, workflow string, version int) (model.WorkflowVersion, error) {
	var row pgx.Row
	if version == 0 {
		row = s.pool.QueryRow(ctx, `SELECT v.namespace, v.workflow, v.version, v.hash, v.yaml, v.compiled, v.created_at
			FROM workflows w JOIN workflow_versions v
				ON v.namespace = w.namespace AND v.workflow = w.name AND v.version = w.latest_version
			WHERE w.namespace = $1 AND w.name = $2`, ns, workflow)
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+versionCols+` FROM workflow_versions
			WHERE namespace = $1 AND workflow = $2 AND version = $3`, ns, workflow, version)
	}
	v, err := scanVersion(row)
	if err != nil {
		return v, fmt.Errorf("get version %d of workflow %s/%s: %w", version, ns, workflow, notFound(err))
	}
	return v, nil
}

// ListVersions lists the versions of workflow in namespace ns, newest first. It returns
// ErrNotFound if the workflow does not exist.
func (s *Store) ListVersions(ctx context.Context, ns, workflow string, page PageRequest) (vs []model.WorkflowVersion, next string, err error) {
	query := fmt.Sprintf("versions|%q|%q", ns, workflow)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", workflow, err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", workflow, err)
	}
	before := int64(math.MaxInt32)
	if key != nil {
		before = key.N
	}
	err = s.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := scanWorkflow(tx.QueryRow(ctx, `SELECT `+workflowCols+` FROM workflows WHERE namespace = $1 AND name = $2`,
			ns, workflow)); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT `+versionCols+` FROM workflow_versions
			WHERE namespace = $1 AND workflow = $2 AND version < $3::bigint ORDER BY version DESC LIMIT $4`,
			ns, workflow, before, limit+1)
		if err != nil {
			return err
		}
		vs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.WorkflowVersion, error) { return scanVersion(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s/%s: %w", ns, workflow, err)
	}
	if len(vs) > limit {
		vs = vs[:limit]
		next = encodeToken(pageKey{Query: query, N: int64(vs[limit-1].Version)})
	}
	return vs, next, nil
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
