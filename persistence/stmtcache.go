package persistence

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// The append path's statements, prepared once. SQLite spends as long
// parsing and planning a small statement as running it, and an append is
// a few small statements: the read of the head and the INSERTs. Statements
// prepared on the store's *sql.DB are run in an Append's *sql.Tx through
// Tx.StmtContext, which reuses the copy already prepared on the
// transaction's connection. AppendTx runs in the caller's ent transaction,
// which cannot do that, so there they run unprepared. On PostgreSQL,
// Append sends its statements through pgx (see appendPipelined), and pgx
// prepares and keeps every statement on each connection by itself (the
// shapes keep the append's texts few, see shapes.go), so the
// projectors' statements are prepared at open only where an engine's
// Features.PreparesProjections says appends use them (SQLite).

// stmtCache holds the texts and prepared statements of the append path.
// Its texts are those of the shapes (at most shapeTexts, see shapes.go),
// and it prepares at most maxPrepared statements.
type stmtCache struct {
	mu       sync.Mutex
	texts    map[shape]string
	prepared map[string]*sql.Stmt
	// prepares counts the statements prepared; unprepared the statements
	// run from their text in an Append's own *sql.Tx, each parsed again
	// (tests read them).
	prepares, unprepared atomic.Int64
}

type shape struct {
	kind byte // 'i' insert, 'h' head read, 'c' command look-up
	n    int
	// For an insert: it also notifies. For a head read: it reads the
	// last sequence and whether the command is stored.
	first bool
}

// text returns the statement of k, built once when keep.
func (c *stmtCache) text(k shape, keep bool, build func() string) string {
	if !keep {
		return build()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.texts[k]
	if !ok {
		if c.texts == nil {
			c.texts = map[shape]string{}
		}
		q = build()
		c.texts[k] = q
	}
	return q
}

// insert returns the INSERT of n events, notifying with notify. Only the
// shapes are kept: inserts asks for no other.
func (c *stmtCache) insert(d dialect, n int, notify bool) string {
	return c.text(shape{kind: 'i', n: n, first: notify}, isShape(d, n),
		func() string { return insertStatement(d, n, notify) })
}

// head returns the head read of n streams (see headStatement). Only the
// shapes are kept: headReads asks for no other.
func (c *stmtCache) head(d dialect, n int, first bool) string {
	return c.text(shape{kind: 'h', n: n, first: first}, isHeadShape(n),
		func() string { return headStatement(d, n, first) })
}

// command returns the look-up of a command's events (see Store.collect).
func (c *stmtCache) command(d dialect) string {
	return c.text(shape{kind: 'c'}, true, func() string { return commandStatement(d) })
}

// warm prepares on db the statements an append of b will run (see
// shapes.go), those not prepared yet. It runs before the append's
// transaction begins: a private in-memory database has a single
// connection, which the transaction then holds. A statement that fails
// to prepare runs unprepared, and reports its error then.
func (c *stmtCache) warm(ctx context.Context, db *sql.DB, d dialect, b *batch) {
	var queries []string
	if b.opts.CommandID != "" {
		queries = append(queries, c.command(d))
	}
	for start := 0; start < len(b.streams); start += headStreams {
		n := padded(min(headStreams, len(b.streams)-start))
		queries = append(queries, c.head(d, n, start == 0))
	}
	_, suffix := d.NotifyingInsert()
	if d.Features().ArrayParameters {
		// One INSERT of arrays, unless the events are large (see
		// maxArrayBytes): then the plain one comes first, which is not
		// warmed here; pgx prepares it on the connection it first runs
		// on.
		queries = append(queries, c.insert(d, arrayRows, suffix != ""))
	} else {
		sizes := chunkSizes(len(b.events), maxChunk(d))
		for i, n := range sizes {
			queries = append(queries, c.insert(d, n, suffix != "" && i == len(sizes)-1))
		}
	}
	c.prepareAll(ctx, db, queries)
}

// stmt returns the prepared statement of query for q, or nil when q is
// not a *sql.Tx or query was not prepared. The caller closes it.
func (c *stmtCache) stmt(ctx context.Context, q querier, query string) *sql.Stmt {
	tx, ok := q.(*sql.Tx)
	if !ok {
		return nil
	}
	c.mu.Lock()
	st := c.prepared[query]
	c.mu.Unlock()
	if st == nil {
		c.unprepared.Add(1)
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// exec runs query in q, prepared when it can.
func (c *stmtCache) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, q, query); st != nil {
		defer st.Close()
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}

// query runs query in q, prepared when it can. The caller calls done
// when it is through with rows.
func (c *stmtCache) query(ctx context.Context, q querier, query string, args ...any) (rows *sql.Rows, done func(), err error) {
	if st := c.stmt(ctx, q, query); st != nil {
		rows, err = st.QueryContext(ctx, args...)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return rows, func() { rows.Close(); st.Close() }, nil
	}
	rows, err = q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { rows.Close() }, nil
}

// queryRow runs query in q, prepared when it can, and scans its one row
// into dest.
func (c *stmtCache) queryRow(ctx context.Context, q querier, query string, args []any, dest ...any) error {
	rows, done, err := c.query(ctx, q, query, args...)
	if err != nil {
		return err
	}
	defer done()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// prepareAll prepares queries on db, once each. A query that fails to
// prepare runs unprepared and reports its error then. It does not hold
// c.mu while it waits for a connection: a transaction holding the last
// connection may need c.mu to finish.
func (c *stmtCache) prepareAll(ctx context.Context, db *sql.DB, queries []string) {
	for _, q := range queries {
		c.mu.Lock()
		_, ok := c.prepared[q]
		full := len(c.prepared) >= maxPrepared
		c.mu.Unlock()
		if ok || full {
			continue
		}
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.prepares.Add(1)
		c.mu.Lock()
		_, dup := c.prepared[q]
		if !dup {
			if c.prepared == nil {
				c.prepared = map[string]*sql.Stmt{}
			}
			c.prepared[q] = st
		}
		c.mu.Unlock()
		if dup {
			// Another goroutine prepared it meanwhile. Close waits for
			// connections busy in other transactions: never under c.mu.
			go st.Close()
		}
	}
}

// preparedTx runs statements in tx through the statements prepared in c,
// and unprepared when they were not. Statements taken into tx are closed
// with it.
type preparedTx struct {
	tx *sql.Tx
	c  *stmtCache
}

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.c.stmt(ctx, p.tx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.c.stmt(ctx, p.tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.tx.QueryContext(ctx, query, args...)
}
