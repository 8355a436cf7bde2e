package persistence

import (
	"context"

	"github.com/peonhq/peon/ent"
)

// writeTx runs fn in a write transaction of its own, holding the store's
// write lock, and commits when fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if err := s.writable(); err != nil {
		return err
	}
	if s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.client.BeginTx(ctx, s.d.appendTxOptions())
	if err != nil {
		return err
	}
	if err := s.d.lockAppend(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
