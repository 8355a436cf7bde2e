package persistence

import (
	"context"
	"database/sql"

	"github.com/peonhq/peon/ent"
)

// lockedTx is a write transaction: an *ent.Tx or an *sql.Tx.
type lockedTx interface {
	querier
	Commit() error
	Rollback() error
}

// beginLocked is the store's one write-lock protocol, which every write
// outside Append's own path follows (writeTx, Rebuild's swap, Import's
// second phase): it takes this process's writeMu when the store
// serializes its writers (SQLite) unless the caller holds it (held),
// begins a transaction with begin and the dialect's options (SQLite:
// IMMEDIATE, the file's write lock), and takes the dialect's append lock
// in it (PostgreSQL: the advisory lock). release rolls the transaction
// back unless it committed, then lets writeMu go; the caller defers it.
// wrap, when set, says which of "begin" and "lock" failed.
func beginLocked[T lockedTx](ctx context.Context, s *Store, held bool, begin func(context.Context, *sql.TxOptions) (T, error), wrap func(what string, err error) error) (tx T, release func(), err error) {
	if wrap == nil {
		wrap = func(_ string, err error) error { return err }
	}
	unlock := func() {}
	if s.serial && !held {
		s.writeMu.Lock()
		unlock = s.writeMu.Unlock
	}
	tx, err = begin(ctx, s.d.AppendTxOptions())
	if err != nil {
		unlock()
		var none T
		return none, nil, wrap("begin", err)
	}
	release = func() {
		tx.Rollback()
		unlock()
	}
	if err := s.lockAppend(ctx, tx); err != nil {
		release()
		var none T
		return none, nil, wrap("lock", err)
	}
	return tx, release, nil
}

// writeTx runs fn in a write transaction of its own, holding the store's
// write lock, and commits when fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if err := s.writable(); err != nil {
		return err
	}
	tx, release, err := beginLocked(ctx, s, false, s.client.BeginTx, nil)
	if err != nil {
		return err
	}
	defer release()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
