package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-io/cairn/pkg/model"
)

// Namespaces. Every workflow and every run belongs to one (see migration 000004): every read
// and write of them names its namespace, and a row of another namespace is ErrNotFound.
// workflows, runs and secrets reference namespaces ON DELETE RESTRICT, so a namespace is
// deleted only when it holds nothing, whatever writes run concurrently.

// MaxNamespaceDescription bounds a namespace's description, in bytes.
const MaxNamespaceDescription = 1024

const namespaceCols = `name, description, created_at`

func scanNamespace(row pgx.Row) (model.Namespace, error) {
	var n model.Namespace
	err := row.Scan(&n.Name, &n.Description, &n.CreatedAt)
	return n, err
}

// checkNamespace validates a namespace name.
func checkNamespace(ns string) error {
	if !workflowName.MatchString(ns) {
		return invalidf("namespace %q must match %s", ns, workflowName)
	}
	return nil
}

// namespaceNotFound is the error of a read or write in a namespace that does not exist.
func namespaceNotFound(ns string) error {
	return fmt.Errorf("namespace %s: %w", ns, ErrNotFound)
}

// isForeignKeyViolation reports whether err is a violation of the named foreign key.
func isForeignKeyViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503" && pe.ConstraintName == constraint
}

// NotEmptyError is the detail of ErrNotEmpty: what a namespace still holds.
type NotEmptyError struct {
	Namespace   string
	Workflows   int
	Runs        int
	DeadLetters int // open ones
	Secrets     int
}

func (e *NotEmptyError) Error() string {
	var held []string
	for _, c := range []struct {
		n    int
		what string
	}{{e.Workflows, "workflow"}, {e.Runs, "run"}, {e.DeadLetters, "open dead letter"}, {e.Secrets, "secret"}} {
		if c.n > 0 {
			s := fmt.Sprintf("%d %s", c.n, c.what)
			if c.n > 1 {
				s += "s"
			}
			held = append(held, s)
		}
	}
	if len(held) == 0 {
		held = []string{"rows that reference it"}
	}
	return fmt.Sprintf("namespace %s is not empty: it still holds %s", e.Namespace, strings.Join(held, ", "))
}

// Is makes errors.Is(err, ErrNotEmpty) true.
func (e *NotEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// CreateNamespace creates a namespace. An existing name is ErrAlreadyExists (nothing changes).
func (s *Store) CreateNamespace(ctx context.Context, epoch int64, ns model.Namespace) (model.Namespace, error) {
	if err := checkNamespace(ns.Name); err != nil {
		return model.Namespace{}, fmt.Errorf("create namespace: %w", err)
	}
	if len(ns.Description) > MaxNamespaceDescription {
		return model.Namespace{}, fmt.Errorf("create namespace %s: %w", ns.Name,
			invalidf("description is %d bytes long, at most %d", len(ns.Description), MaxNamespaceDescription))
	}
	var out model.Namespace
	err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		var err error
		out, err = scanNamespace(tx.QueryRow(ctx, `INSERT INTO namespaces (name, description) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING RETURNING `+namespaceCols, ns.Name, ns.Description))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrAlreadyExists
		}
		return err
	})
	if err != nil {
		return model.Namespace{}, fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return out, nil
}

// GetNamespace returns a namespace, ErrNotFound if it does not exist.
func (s *Store) GetNamespace(ctx context.Context, name string) (model.Namespace, error) {
	n, err := scanNamespace(s.pool.QueryRow(ctx, `SELECT `+namespaceCols+` FROM namespaces WHERE name = $1`, name))
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return n, namespaceNotFound(name)
		}
		return n, fmt.Errorf("get namespace %s: %w", name, err)
	}
	return n, nil
}

// ListNamespaces lists namespaces by name.
func (s *Store) ListNamespaces(ctx context.Context, page PageRequest) (ns []model.Namespace, next string, err error) {
	const query = "namespaces"
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list namespaces: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list namespaces: %w", err)
	}
	after := ""
	if key != nil {
		after = key.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+namespaceCols+` FROM namespaces WHERE name > $1 ORDER BY name LIMIT $2`,
		after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list namespaces: %w", err)
	}
	if ns, err = collect(rows, scanNamespace); err != nil {
		return nil, "", fmt.Errorf("list namespaces: %w", err)
	}
	if len(ns) > limit {
		ns = ns[:limit]
		next = encodeToken(pageKey{Query: query, ID: ns[limit-1].Name})
	}
	return ns, next, nil
}

// DeleteNamespace deletes an empty namespace. It is ErrNotFound if the namespace does not
// exist, a *NotEmptyError (ErrNotEmpty) saying what it holds if any workflow, run or secret
// is in it, and ErrInvalidArgument for the default namespace, which always exists.
//
// The namespace row is locked first (FOR UPDATE): a writer about to add a workflow, a run or
// a secret to it holds, or waits for, a FOR KEY SHARE lock on that row, so once the lock is taken the
// counts see every committed row and no new one can commit before the delete; the ON DELETE
// RESTRICT foreign keys make the same guarantee a second time.
func (s *Store) DeleteNamespace(ctx context.Context, epoch int64, name string) error {
	if name == model.DefaultNamespace {
		return fmt.Errorf("delete namespace %s: %w", name, invalidf("the default namespace cannot be deleted"))
	}
	err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM namespaces WHERE name = $1 FOR UPDATE`, name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		held := &NotEmptyError{Namespace: name}
		if err := tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM workflows WHERE namespace = $1),
				(SELECT count(*) FROM runs WHERE namespace = $1),
				(SELECT count(*) FROM dead_letters WHERE namespace = $1 AND replayed_at IS NULL),
				(SELECT count(*) FROM secrets WHERE namespace = $1)`, name).
			Scan(&held.Workflows, &held.Runs, &held.DeadLetters, &held.Secrets); err != nil {
			return fmt.Errorf("count what it holds: %w", err)
		}
		if held.Workflows+held.Runs+held.DeadLetters+held.Secrets > 0 {
			return held
		}
		_, err = tx.Exec(ctx, `DELETE FROM namespaces WHERE name = $1`, name)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" { // cannot happen under the lock; kept as a guard
			return held
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}
