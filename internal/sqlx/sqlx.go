// Package sqlx holds the small SQL plumbing that the persistence and
// projection packages share: the querier both run statements through and
// the rewriting of ? placeholders for PostgreSQL.
package sqlx

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Querier is what the store needs of a *sql.DB, *sql.Tx, *sql.Conn or an
// *ent.Tx: raw statements, inside whatever transaction it carries.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Dollar rewrites the ? placeholders of query into $1, $2, … for
// PostgreSQL. Statements of this module never hold a literal '?'.
func Dollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// QueryInt64 runs a query that returns one integer (no row or NULL read
// as 0).
func QueryInt64(ctx context.Context, q Querier, query string, args ...any) (int64, error) {
	if iq, ok := q.(Int64Querier); ok {
		return iq.QueryInt64(ctx, query, args...)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var v sql.NullInt64
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return 0, err
		}
	}
	return v.Int64, rows.Err()
}

// Deferrer is implemented by a Querier that can hold back statements
// whose results nobody reads and send them together with the next
// statement run through it, or with the transaction's COMMIT: one round
// trip for all of them. Statements still run in the order they were
// given. The error of a held-back statement is a *DeferredError, returned
// by whichever call sent it.
type Deferrer interface {
	Querier
	// Defer queues query; what names it in its error.
	Defer(what, query string, args ...any)
}

// DeferredError is the error of a statement a Deferrer held back. What
// names that statement, which is not the one the call returning the
// error ran.
type DeferredError struct {
	What string
	Err  error
}

func (e *DeferredError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *DeferredError) Unwrap() error { return e.Err }

// Int64Querier is implemented by a Querier with a QueryInt64 of its own,
// which QueryInt64 then uses: a Deferrer sends the query with what it
// holds back.
type Int64Querier interface {
	QueryInt64(ctx context.Context, query string, args ...any) (int64, error)
}
