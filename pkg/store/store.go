package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-io/cairn/pkg/model"
)

// Store reads and writes Cairn's state in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// savepointRetries counts batches applied a second time with savepoints (see Apply).
	savepointRetries atomic.Int64
}

// New returns a Store on pool. The schema must be migrated (package schema).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying pool (for health checks).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// TakeLeadership records that holder leads with epoch. The stored epoch is raised only if
// epoch is greater; calling again with the current epoch and the same holder is a no-op.
// Otherwise it returns a *StaleEpochError (ErrStaleEpoch). Because every leader write
// transaction holds the leadership row FOR SHARE, TakeLeadership waits for the previous
// leader's in-flight writes to finish, and none of its later writes can commit.
func (s *Store) TakeLeadership(ctx context.Context, epoch int64, holder string) (model.Leadership, error) {
	if epoch <= 0 {
		return model.Leadership{}, invalidf("take leadership: epoch %d must be positive", epoch)
	}
	if holder == "" {
		return model.Leadership{}, invalidf("take leadership: holder is empty")
	}
	var l model.Leadership
	err := s.pool.QueryRow(ctx, `
		UPDATE leadership SET epoch = $1, holder = $2, since = now(), updated_at = now()
		WHERE epoch < $1
		RETURNING epoch, holder, since`, epoch, holder).Scan(&l.Epoch, &l.Holder, &l.Since)
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("take leadership with epoch %d: %w", epoch, err)
	}
	cur, err := s.GetLeadership(ctx)
	if err != nil {
		return l, fmt.Errorf("take leadership with epoch %d: %w", epoch, err)
	}
	if cur.Epoch == epoch && cur.Holder == holder {
		return cur, nil
	}
	return cur, fmt.Errorf("take leadership as %q: %w", holder, &StaleEpochError{Epoch: epoch, Current: cur.Epoch})
}

// GetLeadership returns the stored leadership record (epoch 0 before any leader).
func (s *Store) GetLeadership(ctx context.Context) (model.Leadership, error) {
	var l model.Leadership
	err := s.pool.QueryRow(ctx, `SELECT epoch, holder, since FROM leadership`).Scan(&l.Epoch, &l.Holder, &l.Since)
	if err != nil {
		return l, fmt.Errorf("get leadership: %w", err)
	}
	return l, nil
}

// leaderTx runs fn in a transaction whose first statement locks the leadership row FOR SHARE
// and checks that epoch is current. On a mismatch, or any error of fn, the transaction rolls
// back and nothing changes.
func (s *Store) leaderTx(ctx context.Context, epoch int64, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkEpoch(tx.QueryRow(ctx, epochSQL), epoch); err != nil {
			return err
		}
		return fn(tx)
	})
}

// epochSQL is the first statement of every leader write: it locks the leadership row FOR
// SHARE, so a takeover (which updates it) waits for the transaction, and reads the epoch.
const epochSQL = `SELECT epoch FROM leadership FOR SHARE`

// checkEpoch scans epochSQL's row and compares it with the caller's epoch.
func checkEpoch(row pgx.Row, epoch int64) error {
	var cur int64
	if err := row.Scan(&cur); err != nil {
		return fmt.Errorf("check leader epoch: %w", err)
	}
	if cur != epoch {
		return &StaleEpochError{Epoch: epoch, Current: cur}
	}
	return nil
}

// readTx runs fn in a read-only REPEATABLE READ transaction: one consistent snapshot.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// optTime scans a nullable timestamptz into a time.Time (NULL → zero time).
type optTime struct{ p *time.Time }

func (o optTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*o.p = time.Time{}
	case time.Time:
		*o.p = v
	default:
		return fmt.Errorf("scan %T into time", src)
	}
	return nil
}

// nullTime is t, or NULL when t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// pgUUID passes a UUID as a parameter pgx encodes directly. uuid.UUID is a driver.Valuer,
// which pgx encodes by formatting it as a string and parsing that back (12 % of the leader's
// CPU in the throughput benchmark); pgtype.UUID is written as its 16 bytes.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// nullStr is s, or NULL when s is empty.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}
