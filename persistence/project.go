package persistence

import (
	"context"

	"github.com/peonhq/peon/ent"
)

// project applies recs to the projections inside tx.
func (s *Store) project(ctx context.Context, tx *ent.Tx, recs []Recorded) error {
	if s.opts.NoProjections {
		return nil
	}
	return nil
}

// CatchUp brings every projector that is behind the log up to date and
// returns how many events it applied.
func (s *Store) CatchUp(ctx context.Context) (int64, error) {
	return 0, nil
}
