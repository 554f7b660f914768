package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
)

const deadLetterCols = `id, namespace, run_id, task_id, workflow, errors, created_at, replayed_at`

func scanDeadLetter(row pgx.Row) (model.DeadLetter, error) {
	var d model.DeadLetter
	err := row.Scan(&d.ID, &d.Namespace, &d.RunID, &d.TaskID, &d.Workflow, &d.Errors, &d.CreatedAt, optTime{&d.ReplayedAt})
	return d, err
}

// DeadLetterFilter narrows ListDeadLetters.
type DeadLetterFilter struct {
	Workflow string // empty: every workflow
	Open     bool   // only entries not replayed yet
}

// ListDeadLetters lists the dead letters of namespace ns newest first (keyset on
// (created_at, id)).
func (s *Store) ListDeadLetters(ctx context.Context, ns string, f DeadLetterFilter, page PageRequest) (ds []model.DeadLetter, next string, err error) {
	query := fmt.Sprintf("deadletters|%q|%q|%t", ns, f.Workflow, f.Open)
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list dead letters: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list dead letters: %w", err)
	}
	sql, args := `SELECT `+deadLetterCols+` FROM dead_letters WHERE namespace = $1`, []any{ns}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Workflow != "" {
		sql += ` AND workflow = ` + arg(f.Workflow)
	}
	if f.Open {
		sql += ` AND replayed_at IS NULL`
	}
	if key != nil {
		id, err := uuid.Parse(key.ID)
		if err != nil {
			return nil, "", fmt.Errorf("list dead letters: %w: bad key", ErrInvalidPageToken)
		}
		sql += fmt.Sprintf(` AND (created_at, id) < (%s, %s)`, arg(time.UnixMicro(key.Micro)), arg(id))
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list dead letters: %w", err)
	}
	if ds, err = collect(rows, scanDeadLetter); err != nil {
		return nil, "", fmt.Errorf("list dead letters: %w", err)
	}
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = encodeToken(pageKey{Query: query, Micro: last.CreatedAt.UnixMicro(), ID: last.ID.String()})
	}
	return ds, next, nil
}

// GetDeadLetter returns one dead letter of namespace ns; one of another namespace is
// ErrNotFound.
func (s *Store) GetDeadLetter(ctx context.Context, ns string, id uuid.UUID) (model.DeadLetter, error) {
	d, err := scanDeadLetter(s.pool.QueryRow(ctx, `SELECT `+deadLetterCols+` FROM dead_letters WHERE id = $1 AND namespace = $2`,
		id, ns))
	if err != nil {
		return d, fmt.Errorf("get dead letter %s: %w", id, notFound(err))
	}
	return d, nil
}

// OpenDeadLetters returns the ids of the dead letters not replayed yet of a run of namespace
// ns, by task id.
func (s *Store) OpenDeadLetters(ctx context.Context, ns string, runID uuid.UUID) (map[string]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT task_id, id FROM dead_letters WHERE run_id = $1 AND namespace = $2
		AND replayed_at IS NULL`, runID, ns)
	if err != nil {
		return nil, fmt.Errorf("open dead letters of run %s: %w", runID, err)
	}
	defer rows.Close()
	out := map[string]uuid.UUID{}
	for rows.Next() {
		var task string
		var id uuid.UUID
		if err := rows.Scan(&task, &id); err != nil {
			return nil, fmt.Errorf("open dead letters of run %s: %w", runID, err)
		}
		out[task] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open dead letters of run %s: %w", runID, err)
	}
	return out, nil
}
