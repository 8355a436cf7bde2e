// Package sqlx holds the small SQL plumbing that the store, its engines
// and the projector share: the querier they run raw statements through,
// the read of one integer, and the rewriting of ? placeholders for
// PostgreSQL.
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

// Int64Querier is implemented by a Querier with a QueryInt64 of its own,
// which QueryInt64 then uses: a querier that holds statements back sends
// the query with them.
type Int64Querier interface {
	QueryInt64(ctx context.Context, query string, args ...any) (int64, error)
}

// QueryString runs a query that returns one text value (no row or NULL
// read as "").
func QueryString(ctx context.Context, q Querier, query string, args ...any) (string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var v sql.NullString
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
	}
	return v.String, rows.Err()
}
