package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-io/cairn/pkg/mask"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/secretbox"
)

// Secrets (migration 000006). The store only ever sees a secret sealed (secretbox.Sealed):
// the leader seals a value before calling PutSecret and unseals what GetSealedSecrets
// returns, so no statement, parameter or row holds a value in clear. Writes are the leader's
// (fenced by its epoch, like every other write); listings and the apply-time check are reads.

const secretCols = `namespace, name, key_id, created_at, updated_at, updated_by`

func scanSecret(row pgx.Row) (model.Secret, error) {
	var m model.Secret
	err := row.Scan(&m.Namespace, &m.Name, &m.KeyID, &m.CreatedAt, &m.UpdatedAt, &m.UpdatedBy)
	return m, err
}

// checkSecretName validates a secret's name (the workflow-name rule).
func checkSecretName(name string) error {
	if !workflowName.MatchString(name) {
		return invalidf("secret name %q must match %s", name, workflowName)
	}
	return nil
}

// PutSecret stores the sealed value of secret name in namespace ns, creating it or replacing
// its value; by is the caller recorded as updated_by. It reports whether the secret was
// created. A namespace that does not exist is ErrNotFound naming it.
func (s *Store) PutSecret(ctx context.Context, epoch int64, ns, name string, sealed secretbox.Sealed, by string) (model.Secret, bool, error) {
	if err := errors.Join(checkNamespace(ns), checkSecretName(name)); err != nil {
		return model.Secret{}, false, fmt.Errorf("put secret: %w", err)
	}
	if sealed.KeyID == "" || len(sealed.Nonce) != secretbox.NonceSize || len(sealed.Ciphertext) == 0 {
		return model.Secret{}, false, fmt.Errorf("put secret %s/%s: %w", ns, name, invalidf("the sealed value is incomplete"))
	}
	var out model.Secret
	var created bool
	err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `INSERT INTO secrets (namespace, name, key_id, nonce, ciphertext, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (namespace, name) DO UPDATE SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce,
				ciphertext = EXCLUDED.ciphertext, updated_at = now(), updated_by = EXCLUDED.updated_by
			RETURNING `+secretCols+`, xmax = 0`, ns, name, sealed.KeyID, sealed.Nonce, sealed.Ciphertext, by)
		err := row.Scan(&out.Namespace, &out.Name, &out.KeyID, &out.CreatedAt, &out.UpdatedAt, &out.UpdatedBy, &created)
		if isForeignKeyViolation(err, "secrets_namespace_fkey") {
			return namespaceNotFound(ns)
		}
		return err
	})
	if err != nil {
		return model.Secret{}, false, fmt.Errorf("put secret %s/%s: %w", ns, name, err)
	}
	return out, created, nil
}

// DeleteSecret deletes secret name of namespace ns; ErrNotFound if there is none.
func (s *Store) DeleteSecret(ctx context.Context, epoch int64, ns, name string) error {
	err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM secrets WHERE namespace = $1 AND name = $2`, ns, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete secret %s/%s: %w", ns, name, err)
	}
	return nil
}

// GetSealedSecrets returns the sealed values of the named secrets of namespace ns that
// exist, by name; a name without a secret is absent from the map (not an error).
func (s *Store) GetSealedSecrets(ctx context.Context, ns string, names []string) (map[string]secretbox.Sealed, error) {
	out := make(map[string]secretbox.Sealed, len(names))
	if len(names) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT name, key_id, nonce, ciphertext FROM secrets
		WHERE namespace = $1 AND name = ANY($2::text[])`, ns, names)
	if err != nil {
		return nil, fmt.Errorf("get secrets of %s: %w", ns, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v secretbox.Sealed
		if err := rows.Scan(&name, &v.KeyID, &v.Nonce, &v.Ciphertext); err != nil {
			return nil, fmt.Errorf("get secrets of %s: %w", ns, err)
		}
		out[name] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get secrets of %s: %w", ns, err)
	}
	return out, nil
}

// MissingSecrets returns, sorted, those of names that namespace ns holds no secret for.
func (s *Store) MissingSecrets(ctx context.Context, ns string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT n FROM unnest($2::text[]) AS n
		WHERE NOT EXISTS (SELECT 1 FROM secrets WHERE namespace = $1 AND name = n)
		GROUP BY n ORDER BY n`, ns, names)
	if err != nil {
		return nil, fmt.Errorf("check secrets of %s: %w", ns, err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check secrets of %s: %w", ns, err)
	}
	return missing, nil
}

// ListSecrets lists the secrets of namespace ns by name: what is known about each, never a
// value. An empty listing of a namespace that does not exist is not an error.
func (s *Store) ListSecrets(ctx context.Context, ns string, page PageRequest) (out []model.Secret, next string, err error) {
	query := "secrets|ns=" + ns
	limit, err := page.limit()
	if err != nil {
		return nil, "", fmt.Errorf("list secrets: %w", err)
	}
	key, err := decodeToken(page.Token, query)
	if err != nil {
		return nil, "", fmt.Errorf("list secrets: %w", err)
	}
	after := ""
	if key != nil {
		after = key.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+secretCols+` FROM secrets WHERE namespace = $1 AND name > $2
		ORDER BY name LIMIT $3`, ns, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list secrets of %s: %w", ns, err)
	}
	if out, err = collect(rows, scanSecret); err != nil {
		return nil, "", fmt.Errorf("list secrets of %s: %w", ns, err)
	}
	if len(out) > limit {
		out = out[:limit]
		next = encodeToken(pageKey{Query: query, ID: out[limit-1].Name})
	}
	return out, next, nil
}

// ResealFunc re-encrypts one stored value under the active key (secretbox.Keyring.Reseal):
// it returns the new sealed value and whether it changed.
type ResealFunc func(ns, name string, v secretbox.Sealed) (secretbox.Sealed, bool, error)

// ResealResult counts what ResealSecrets did.
type ResealResult struct {
	Resealed int // rows now under the active key that were not
	Failed   int // rows that could not be resealed (their error is returned)
}

// resealBatch is how many rows one transaction of ResealSecrets locks and rewrites.
const resealBatch = 100

// ResealSecrets rewrites every secret not sealed under the key active (in every namespace)
// with what reseal returns, resealBatch rows per fenced transaction, until none is left. The
// value, created_at, updated_at and updated_by stay as they are: only the sealing changes.
// A row reseal cannot open (its key is not in the keyring) is left as it is and counted in
// Failed; the first such error is returned, with the count, once every other row is done.
func (s *Store) ResealSecrets(ctx context.Context, epoch int64, active string, reseal ResealFunc) (ResealResult, error) {
	var res ResealResult
	var firstErr error
	type key struct{ ns, name string }
	skip := map[key]bool{} // rows that failed, not retried in this pass
	for {
		done := 0
		err := s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT namespace, name, key_id, nonce, ciphertext FROM secrets
				WHERE key_id <> $1 ORDER BY namespace, name LIMIT $2 FOR UPDATE`, active, resealBatch+len(skip))
			if err != nil {
				return err
			}
			type row struct {
				k key
				v secretbox.Sealed
			}
			todo, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				err := r.Scan(&x.k.ns, &x.k.name, &x.v.KeyID, &x.v.Nonce, &x.v.Ciphertext)
				return x, err
			})
			if err != nil {
				return err
			}
			batch := &pgx.Batch{}
			for _, x := range todo {
				if skip[x.k] || done == resealBatch {
					continue
				}
				nv, changed, err := reseal(x.k.ns, x.k.name, x.v)
				if err != nil {
					skip[x.k] = true
					res.Failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("secret %s/%s: %w", x.k.ns, x.k.name, err)
					}
					continue
				}
				if !changed { // already under the active key: nothing to do (and not seen again)
					skip[x.k] = true
					continue
				}
				done++
				batch.Queue(`UPDATE secrets SET key_id = $3, nonce = $4, ciphertext = $5 WHERE namespace = $1 AND name = $2`,
					x.k.ns, x.k.name, nv.KeyID, nv.Nonce, nv.Ciphertext)
			}
			if batch.Len() == 0 {
				return nil
			}
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
			res.Resealed += batch.Len()
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("reseal secrets: %w", err)
		}
		if done == 0 {
			break
		}
	}
	if firstErr != nil {
		return res, fmt.Errorf("reseal secrets: %d could not be resealed: %w", res.Failed, firstErr)
	}
	return res, nil
}

// Limits of a secret's value, checked by the gateway and again by the leader before sealing.
const (
	// MinSecretValue is the shortest value accepted: masking ignores shorter ones (mask.MinLen),
	// so they would show in task output.
	MinSecretValue = mask.MinLen
	// MaxSecretValue bounds a value, in bytes (an environment value or a header of that size
	// is already unusual; Linux caps one environment string at 128 KiB).
	MaxSecretValue = 64 << 10
)

// SecretValueProblem says what is wrong with a secret's value ("is 2 bytes long, ..."), or ""
// when nothing is. It describes the value by its length, never by its content, so the text
// is safe to return and log.
func SecretValueProblem(v string) string {
	switch {
	case len(v) < MinSecretValue:
		return fmt.Sprintf("is %d bytes long, at least %d are needed (shorter values cannot be masked in task output)", len(v), MinSecretValue)
	case len(v) > MaxSecretValue:
		return fmt.Sprintf("is %d bytes long, at most %d are allowed", len(v), MaxSecretValue)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case strings.IndexByte(v, 0) >= 0:
		return "contains a NUL byte, which no environment variable or header can hold"
	}
	return ""
}
