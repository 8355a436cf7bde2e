package persistence

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// querier is what the store needs of a *sql.DB, *sql.Tx, *sql.Conn or an
// *ent.Tx: raw statements, inside whatever transaction it carries.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// dialect is the seam between the engines: everything the store does
// differently on SQLite and PostgreSQL, and nothing else. Statements above
// it are written with ? placeholders and passed through bind.
type dialect interface {
	// name is "sqlite" or "postgres", also the name of the migration
	// directory.
	name() string
	// entDialect is ent's name for the dialect.
	entDialect() string
	// bind rewrites ? placeholders into the dialect's own.
	bind(query string) string
	// maxArgs is the most bind arguments one statement may carry.
	maxArgs() int
	// lockAppend serializes appenders for the rest of tx, so that
	// sequences are taken in commit order.
	lockAppend(ctx context.Context, tx querier) error
	// lastSequence returns the highest sequence ever taken, inside the
	// append lock.
	lastSequence(ctx context.Context, tx querier) (int64, error)
	// notify tells other processes, at commit of tx, that the log grew.
	notify(ctx context.Context, tx querier, head int64) error
	// revisionTable creates atlas_schema_revisions as the atlas CLI does.
	revisionTable() string
	// lockMigrate serializes migrating processes for the rest of tx.
	lockMigrate(ctx context.Context, tx querier) error
}

// bindDollar rewrites ? into $1, $2, … (no ? appears in our literals).
func bindDollar(query string) string {
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

// queryInt64 runs a query that returns one integer (NULL reads as 0).
func queryInt64(ctx context.Context, q querier, query string, args ...any) (int64, error) {
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
