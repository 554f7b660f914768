package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SavepointRetries returns how many batches were applied a second time with savepoints.
func (s *Store) SavepointRetries() int64 { return s.savepointRetries.Load() }

// ApplySequential applies b one statement per op, in order, with a savepoint per multi-op
// group: the reference semantics the set-based path of Apply must reproduce.
func (s *Store) ApplySequential(ctx context.Context, epoch int64, b *Batch) (results []error, err error) {
	err = s.leaderTx(ctx, epoch, func(tx pgx.Tx) error {
		results = make([]error, len(b.groups))
		return applyGroups(ctx, tx, b.groups, results)
	})
	return results, err
}

// PlanSegments describes how Apply's set-based path cuts b: one string per segment, its ops
// as "group.op" in emission order, statements separated by " | ".
func PlanSegments(b *Batch) []string {
	var out []string
	for _, seg := range planSet(b.groups).segments {
		var stmts []string
		for r, refs := range seg.byRank {
			if len(refs) == 0 {
				continue
			}
			var ops []string
			for _, ref := range refs {
				ops = append(ops, fmt.Sprintf("%d.%d", ref.g, ref.j))
			}
			if setKind(r) {
				stmts = append(stmts, strings.Join(ops, ","))
			} else {
				stmts = append(stmts, strings.Join(ops, " | "))
			}
		}
		out = append(out, strings.Join(stmts, " | "))
	}
	return out
}
