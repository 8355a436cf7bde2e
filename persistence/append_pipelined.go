package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/projector"
	"github.com/peonhq/peon/internal/sqlx"
)

// rollbackTimeout bounds the ROLLBACK of a failed pipelined append, which
// runs on a context of its own: the append's may have ended.
const rollbackTimeout = 5 * time.Second

// appendPipelined is Append on a dialect that pipelines (PostgreSQL). It
// runs the transaction itself on one connection, in two round trips for
// a bare log:
//
//  1. BEGIN (READ COMMITTED), the append lock, and the head read: the last
//     sequence, the streams' versions and whether the command is stored
//     (and, for a projection of many messages, which of their turns exist:
//     see projector.TurnsRead). Each is a statement of its own, so the
//     head read's snapshot is taken after the lock was granted
//     (docs/ORDERING.md).
//  2. The INSERTs, the last one with the notification folded in, the
//     projection statements, and COMMIT.
//
// The expected versions are checked between the two, before a sequence is
// taken: a conflict, or a command stored before, ends in a ROLLBACK
// instead. The projection runs through a pipeConn, which holds back the
// INSERTs and every projection statement whose result is not read: no
// projection statement reads (parent checks are inside the statements),
// so the projection adds no round trip; a statement that read would add
// one, which would carry what was held back before it.
//
// This process's appends take turns at s.gate (see appendgate.go), where
// they wait with ctx; the first round trip then only tries the server's
// lock, and waits for it, with ctx, in a round trip of its own only when
// another session holds it. After that the statements run under
// workContext: ctx is checked before each round trip, and its end makes
// the append roll back (the connection goes back to the pool) and return
// ctx's error. Once the COMMIT is sent the append waits for its answer;
// when the answer is lost, commitOutcome and settle tell whether it
// committed.
func (s *Store) appendPipelined(ctx context.Context, p pipeliner, b *batch) (recs []Recorded, fresh bool, err error) {
	wrap := func(what string, err error) error {
		if what == "" { // a pipeline's error says which statement failed
			return fmt.Errorf("append to %s: %w", b.stream(), err)
		}
		return fmt.Errorf("append to %s: %s: %w", b.stream(), what, err)
	}
	// fail is the error of an append that wrote nothing.
	fail := func(what string, err error) ([]Recorded, bool, error) {
		return nil, false, ctxErr(ctx, b.stream(), wrap(what, err))
	}
	if err := s.gate.admit(ctx); err != nil {
		return fail("", refuse(ctx, err))
	}
	if err := s.gate.enter(ctx); err != nil {
		return fail("wait for the append lock", err)
	}
	if err := s.gate.admit(ctx); err != nil { // the wait took what was left
		s.gate.leave()
		return fail("", refuse(ctx, err))
	}
	defer s.gate.leave()
	start := time.Now()
	work, stop := workContext(appendGrace, ctx)
	defer stop()
	conn, err := s.db.Conn(work)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	ended := false // the transaction is over: committed, or never begun
	defer func() {
		if !ended {
			endFailed(ctx, conn)
		}
	}()

	var locked bool
	stmts := beginAppend(p, &locked)
	reads, head := s.headReads(b)
	turns, look := s.readTurns(b.events)
	reads = append(reads, look...)
	if err := p.Pipeline(work, conn, append(stmts, reads...)); err != nil {
		return fail("", err)
	}
	if !locked {
		// Another session holds the lock: wait for it on the server, with
		// ctx (its end closes the connection, the one way to stop a
		// statement in flight without a cancel request), and read again.
		lock := pipeStmt{What: "lock", Query: p.LockAppendSQL()}
		if err := p.Pipeline(ctx, conn, append([]pipeStmt{lock}, reads...)); err != nil {
			return fail("", err)
		}
	}
	last, versions, seen := head()
	if seen {
		prior, err := s.priorCommand(work, conn, b)
		if err != nil {
			return nil, false, ctxErr(ctx, b.stream(), err)
		}
		return prior, false, nil // rolled back: nothing was written
	}
	if recs, err = b.number(last, versions); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return fail("", err)
	}

	stmts = s.inserts(recs, true)
	if !s.opts.NoProjections {
		pc := &pipeConn{p: p, conn: conn, pending: stmts, caller: ctx}
		if err := s.projectAppend(work, pc, recs, turns); err != nil {
			if errors.As(err, new(*projector.DeferredError)) { // names its statement
				return fail("", err)
			}
			return fail("project", err)
		}
		stmts = pc.pending
	}
	if err := ctx.Err(); err != nil {
		return fail("", err)
	}
	commit := len(stmts)
	stmts = append(stmts, pipeStmt{What: "commit", Query: "COMMIT"})
	err = p.Pipeline(work, conn, stmts)
	if err == nil {
		ended = true
		s.gate.done(time.Since(start))
		return recs, true, nil
	}
	switch p.CommitOutcome(err, commit) {
	case commitFailed:
		return fail("", err) // the deferred ROLLBACK ends the aborted transaction
	case committed:
		// Every answer came, the COMMIT's too; the connection broke after.
		ended = true
		discard(conn)
		return recs, true, nil
	}
	// The COMMIT may have run. Close the connection, so that the server
	// ends the transaction if it still runs (and its lock with it), and
	// look the batch up on another.
	ended = true
	discard(conn)
	if recs, err = s.settle(ctx, recs, err); err != nil {
		if errors.Is(err, ErrUnknownOutcome) {
			return nil, false, err
		}
		return fail("", err)
	}
	return recs, true, nil
}

// endFailed rolls back the transaction of a pipelined append that did not
// commit, which releases the append lock, on a context of its own: the
// connection goes back to the pool. When that fails (the connection was
// closed when a context ended mid-statement, or broke), it closes the
// connection instead (the server then rolls back).
func endFailed(ctx context.Context, conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		discard(conn)
	}
}

// pipeConn is the projector.Deferrer an append's projection runs through: it
// holds back pending statements (first the INSERTs, then what the Applier
// defers) and pipelines them before the next statement that needs a
// result, in the same round trip where it can. What is pending at the end
// goes with the COMMIT.
type pipeConn struct {
	p       pipeliner
	conn    *sql.Conn
	pending []pipeStmt
	// caller is the append's context: a round trip is not begun once it
	// has ended (the statements run under another, see appendPipelined).
	caller context.Context
}

var (
	_ projector.Deferrer = (*pipeConn)(nil)
	_ sqlx.Int64Querier  = (*pipeConn)(nil)
)

func (c *pipeConn) Defer(what, query string, args ...any) {
	c.pending = append(c.pending, pipeStmt{What: what, Query: query, Args: args})
}

// send pipelines the pending statements and then st, when given. The
// error of a pending statement is a *projector.DeferredError; st's is returned
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
	if c.caller != nil {
		if err := c.caller.Err(); err != nil {
			return err
		}
	}
	err := c.p.Pipeline(ctx, c.conn, stmts)
	var pe *pipeError
	if errors.As(err, &pe) {
		if pe.I < n {
			return &projector.DeferredError{What: pe.What, Err: pe.Err}
		}
		return pe.Err
	}
	return err
}

func (c *pipeConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var n int64
	err := c.send(ctx, &pipeStmt{Query: query, Args: args, Affected: &n})
	return rowsAffected(n), err
}

func (c *pipeConn) QueryInt64(ctx context.Context, query string, args ...any) (int64, error) {
	var v sql.NullInt64
	err := c.send(ctx, &pipeStmt{Query: query, Args: args, Dest: []any{&v}})
	if !errors.As(err, new(*projector.DeferredError)) && errors.Is(err, sql.ErrNoRows) {
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

// beginAppend returns the statements that begin an append's transaction
// and try to take the append lock (see Pipeliner.BeginAppendSQL); the last
// one scans into locked whether it got it.
func beginAppend(p pipeliner, locked *bool) []pipeStmt {
	begin := p.BeginAppendSQL()
	stmts := make([]pipeStmt, len(begin))
	for i, q := range begin {
		stmts[i] = pipeStmt{What: "begin and lock", Query: q}
	}
	stmts[len(stmts)-1].Dest = []any{locked}
	return stmts
}
