package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"
)

// rollbackTimeout bounds the ROLLBACK of a failed pipelined append, which
// runs even when the append's context has ended.
const rollbackTimeout = 5 * time.Second

// appendPipelined is Append on a dialect that pipelines (PostgreSQL). It
// runs the transaction itself on one connection, in two round trips for
// a bare log:
//
//  1. BEGIN (READ COMMITTED), the append lock, and the head read: the last
//     sequence, the streams' versions and whether the command is stored.
//     Each is a statement of its own, so the head read's snapshot is taken
//     after the lock was granted (docs/ORDERING.md).
//  2. The INSERTs, the last one with the notification folded in, and
//     COMMIT.
//
// The expected versions are checked between the two, before a sequence is
// taken: a conflict, or a command stored before, ends in a ROLLBACK
// instead. With projections, they are applied after the INSERTs and COMMIT
// follows on its own.
func (s *Store) appendPipelined(ctx context.Context, p pipeliner, b *batch) (recs []Recorded, fresh bool, err error) {
	wrap := func(what string, err error) error {
		if what == "" { // a pipeline's error says which statement failed
			return fmt.Errorf("append to %s: %w", b.streams[0], err)
		}
		return fmt.Errorf("append to %s: %s: %w", b.streams[0], what, err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, wrap("connect", err)
	}
	defer conn.Close()
	ended := false // the transaction is over: committed, or never begun
	defer func() {
		if !ended {
			endFailed(ctx, conn)
		}
	}()

	var stmts []pipeStmt
	for _, q := range p.beginAppendSQL() {
		stmts = append(stmts, pipeStmt{what: "begin and lock", query: q})
	}
	reads, head := s.headReads(b)
	if err := p.pipeline(ctx, conn, append(stmts, reads...)); err != nil {
		return nil, false, wrap("", err)
	}
	last, versions, seen := head()
	if seen {
		prior, err := s.collect(ctx, conn, b.opts.CommandID)
		if err != nil {
			return nil, false, wrap("look up command "+b.opts.CommandID, err)
		}
		return prior, false, nil // rolled back: nothing was written
	}
	if recs, err = b.number(last, versions); err != nil {
		return nil, false, err
	}

	stmts = s.inserts(recs, true)
	if s.opts.NoProjections {
		stmts = append(stmts, pipeStmt{what: "commit", query: "COMMIT"})
	}
	if err := p.pipeline(ctx, conn, stmts); err != nil {
		return nil, false, wrap("", err)
	}
	if !s.opts.NoProjections {
		if err := s.project(ctx, conn, recs); err != nil {
			return nil, false, wrap("project", err)
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return nil, false, wrap("commit", err)
		}
	}
	ended = true
	return recs, true, nil
}

// endFailed rolls back the transaction of a pipelined append that did not
// commit, which releases the append lock. When that fails, or the
// connection may be mid-statement, it closes the connection instead of
// returning it to the pool (the server then rolls back).
func endFailed(ctx context.Context, conn *sql.Conn) {
	if ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "ROLLBACK"); err == nil {
			return
		}
	}
	conn.Raw(func(any) error { return driver.ErrBadConn })
}
