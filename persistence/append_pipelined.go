package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/sqlx"
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
//  2. The INSERTs, the last one with the notification folded in, the
//     projection statements, and COMMIT.
//
// The expected versions are checked between the two, before a sequence is
// taken: a conflict, or a command stored before, ends in a ROLLBACK
// instead. The projection runs through a pipeConn, which holds back the
// INSERTs and every projection statement whose result is not read: an
// event whose projection reads nothing (a message.delta) adds no round
// trip, and one that reads (a parent lookup, a row count) adds one per
// read, which carries what was held back before it.
func (s *Store) appendPipelined(ctx context.Context, p pipeliner, b *batch) (recs []Recorded, fresh bool, err error) {
	wrap := func(what string, err error) error {
		if what == "" { // a pipeline's error says which statement failed
			return fmt.Errorf("append to %s: %w", b.stream(), err)
		}
		return fmt.Errorf("append to %s: %s: %w", b.stream(), what, err)
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
		prior, err := s.priorCommand(ctx, conn, b)
		return prior, false, err // rolled back: nothing was written
	}
	if recs, err = b.number(last, versions); err != nil {
		return nil, false, err
	}

	stmts = s.inserts(recs, true)
	if !s.opts.NoProjections {
		pc := &pipeConn{p: p, conn: conn, pending: stmts}
		if err := s.project(ctx, pc, recs); err != nil {
			if errors.As(err, new(*sqlx.DeferredError)) { // names its statement
				return nil, false, wrap("", err)
			}
			return nil, false, wrap("project", err)
		}
		stmts = pc.pending
	}
	stmts = append(stmts, pipeStmt{what: "commit", query: "COMMIT"})
	if err := p.pipeline(ctx, conn, stmts); err != nil {
		return nil, false, wrap("", err)
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

// pipeConn is the sqlx.Deferrer an append's projection runs through: it
// holds back pending statements (first the INSERTs, then what the Applier
// defers) and pipelines them before the next statement that needs a
// result, in the same round trip where it can. What is pending at the end
// goes with the COMMIT.
type pipeConn struct {
	p       pipeliner
	conn    *sql.Conn
	pending []pipeStmt
}

var (
	_ sqlx.Deferrer     = (*pipeConn)(nil)
	_ sqlx.Int64Querier = (*pipeConn)(nil)
)

func (c *pipeConn) Defer(what, query string, args ...any) {
	c.pending = append(c.pending, pipeStmt{what: what, query: query, args: args})
}

// send pipelines the pending statements and then st, when given. The
// error of a pending statement is a *sqlx.DeferredError; st's is returned
// as it is.
func (c *pipeConn) send(ctx context.Context, st *pipeStmt) error {
	stmts, n := c.pending, len(c.pending)
	if st != nil {
		stmts = append(stmts, *st)
	}
	c.pending = nil
	if len(stmts) == 0 {
		return nil
	}
	err := c.p.pipeline(ctx, c.conn, stmts)
	var pe *pipeError
	if errors.As(err, &pe) {
		if pe.i < n {
			return &sqlx.DeferredError{What: pe.what, Err: pe.err}
		}
		return pe.err
	}
	return err
}

func (c *pipeConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var n int64
	err := c.send(ctx, &pipeStmt{query: query, args: args, affected: &n})
	return rowsAffected(n), err
}

func (c *pipeConn) QueryInt64(ctx context.Context, query string, args ...any) (int64, error) {
	var v sql.NullInt64
	err := c.send(ctx, &pipeStmt{query: query, args: args, dest: []any{&v}})
	if !errors.As(err, new(*sqlx.DeferredError)) && errors.Is(err, sql.ErrNoRows) {
		err = nil // no row reads as 0, as in sqlx.QueryInt64
	}
	return v.Int64, err
}

// QueryContext sends what is pending, then runs query on its own: its rows
// are read through database/sql.
func (c *pipeConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := c.send(ctx, nil); err != nil {
		return nil, err
	}
	return c.conn.QueryContext(ctx, query, args...)
}

// rowsAffected is the sql.Result of a pipelined statement.
type rowsAffected int64

func (n rowsAffected) LastInsertId() (int64, error) {
	return 0, errors.New("LastInsertId is not supported")
}
func (n rowsAffected) RowsAffected() (int64, error) { return int64(n), nil }
