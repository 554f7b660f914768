package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/model"
)

const scheduleCols = `namespace, workflow, cron, timezone, next_fire_at, last_fire_at, updated_at`

func scanSchedule(row pgx.Row) (model.Schedule, error) {
	var s model.Schedule
	err := row.Scan(&s.Namespace, &s.Workflow, &s.Cron, &s.Timezone, &s.NextFireAt, optTime{&s.LastFireAt}, &s.UpdatedAt)
	return s, err
}

// GetSchedule returns the schedule of a workflow of namespace ns.
func (s *Store) GetSchedule(ctx context.Context, ns, workflow string) (model.Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE namespace = $1 AND workflow = $2`,
		ns, workflow))
	if err != nil {
		return sc, fmt.Errorf("get schedule of %s/%s: %w", ns, workflow, notFound(err))
	}
	return sc, nil
}

// DueSchedules returns up to limit schedules of every namespace whose next fire time is at
// or before now, earliest first. Fire one with an AdvanceSchedule op (CAS on the next fire time) in the
// same group as the run it creates.
func (s *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]model.Schedule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE next_fire_at <= $1
		ORDER BY next_fire_at, namespace, workflow LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	out, err := collect(rows, scanSchedule)
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	return out, nil
}
