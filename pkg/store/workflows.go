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

var workflowName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

const versionCols = `workflow, version, hash, yaml, compiled, created_at`

func scanVersion(row pgx.Row) (model.WorkflowVersion, error) {
	var v model.WorkflowVersion
	err := row.Scan(&v.Workflow, &v.Version, &v.Hash, &v.YAML, &v.Compiled, &v.CreatedAt)
	return v, err
}

const workflowCols = `name, description, latest_version, created_at, updated_at`

func scanWorkflow(row pgx.Row) (model.Workflow, error) {
	var w model.Workflow
	err := row.Scan(&w.Name, &w.Description, &w.LatestVersion, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// PutVersion stores yaml as a version of workflow and makes it the latest. The version is
// identified by the SHA-256 of yaml: submitting identical YAML again returns the existing
// version (created = false) and makes it the latest again; new YAML gets the next version
// number. Concurrent calls for one workflow serialise on its row, so identical YAML
// submitted concurrently creates exactly one version. compiled is stored as given.
func (s *Store) PutVersion(ctx context.Context, epoch int64, workflow, description, yaml string, compiled []byte) (v model.WorkflowVersion, created bool, err error) {
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
		if err := tx.QueryRow(ctx, `
			INSERT INTO workflows (name, description, latest_version, version_count)
			VALUES ($1, $2, 1, 1)
			ON CONFLICT (name) DO UPDATE SET updated_at = now()
			RETURNING version_count, xmax = 0`, workflow, description).Scan(&count, &inserted); err != nil {
			return fmt.Errorf("lock workflow: %w", err)
		}
		if !inserted {
			existing, err := scanVersion(tx.QueryRow(ctx,
				`SELECT `+versionCols+` FROM workflow_versions WHERE workflow = $1 AND hash = $2`, workflow, hash))
			switch {
			case err == nil:
				v, created = existing, false
				_, err = tx.Exec(ctx, `UPDATE workflows SET latest_version = $2, description = $3, updated_at = now()
					WHERE name = $1`, workflow, v.Version, description)
				return err
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("find version by hash: %w", err)
			}
			count++
		}
		var err error
		v, err = scanVersion(tx.QueryRow(ctx, `
			INSERT INTO workflow_versions (workflow, version, hash, yaml, compiled)
			VALUES ($1, $2, $3, $4, $5)
			RETURNING `+versionCols, workflow, count, hash, yaml, compiled))
		if err != nil {
			return fmt.Errorf("insert version %d: %w", count, err)
		}
		created = true
		_, err = tx.Exec(ctx, `UPDATE workflows SET latest_version = $2, version_count = $2, description = $3,
			updated_at = now() WHERE name = $1`, workflow, count, description)
		return err
	})
	if err != nil {
		return model.WorkflowVersion{}, false, fmt.Errorf("put version of workflow %s: %w", workflow, err)
	}
	return v, created, nil
}

// GetWorkflow returns the workflow named name.
func (s *Store) GetWorkflow(ctx context.Context, name string) (model.Workflow, error) {
	w, err := scanWorkflow(s.pool.QueryRow(ctx, `SELECT `+workflowCols+` FROM workflows WHERE name = $1`, name))
	if err != nil {
		return w, fmt.Errorf("get workflow %s: %w", name, notFound(err))
	}
	return w, nil
}

// ListWorkflows lists workflows by name.
func (s *Store) ListWorkflows(ctx context.Context, page PageRequest) (ws []model.Workflow, next string, err error) {
	const query = "workflows"
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
	rows, err := s.pool.Query(ctx, `SELECT `+workflowCols+` FROM workflows WHERE name > $1 ORDER BY name LIMIT $2`,
		after, limit+1)
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

// GetVersion returns version of workflow; version 0 means the latest.
func (s *Store) GetVersion(ctx context.Context, workflow string, version int) (model.WorkflowVersion, error) {
	var row pgx.Row
	if version == 0 {
		row = s.pool.QueryRow(ctx, `SELECT v.workflow, v.version, v.hash, v.yaml, v.compiled, v.created_at
			FROM workflows w JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.latest_version
			WHERE w.name = $1`, workflow)
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+versionCols+` FROM workflow_versions WHERE workflow = $1 AND version = $2`,
			workflow, version)
	}
	v, err := scanVersion(row)
	if err != nil {
		return v, fmt.Errorf("get version %d of workflow %s: %w", version, workflow, notFound(err))
	}
	return v, nil
}

// ListVersions lists the versions of workflow, newest first. It returns ErrNotFound if the
// workflow does not exist.
func (s *Store) ListVersions(ctx context.Context, workflow string, page PageRequest) (vs []model.WorkflowVersion, next string, err error) {
	query := fmt.Sprintf("versions|%q", workflow)
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
		if _, err := scanWorkflow(tx.QueryRow(ctx, `SELECT `+workflowCols+` FROM workflows WHERE name = $1`, workflow)); err != nil {
			return notFound(err)
		}
		rows, err := tx.Query(ctx, `SELECT `+versionCols+` FROM workflow_versions
			WHERE workflow = $1 AND version < $2::bigint ORDER BY version DESC LIMIT $3`, workflow, before, limit+1)
		if err != nil {
			return err
		}
		vs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.WorkflowVersion, error) { return scanVersion(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list versions of %s: %w", workflow, err)
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
