package persistence

import (
	"context"

	"github.com/peonhq/peon/internal/sqlx"
)

// querier runs raw statements; see sqlx.Querier.
type querier = sqlx.Querier

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
	// createShadow creates shadow, an empty temporary table with the
	// columns and column types of table, that the end of tx drops.
	createShadow(ctx context.Context, tx querier, table, shadow string) error
	// distinct is a condition that holds when the values of a and b
	// differ, NULL counting as a value; values that it finds the same
	// render as the same text.
	distinct(a, b string) string
	// byteOrder is the COLLATE clause that orders text by its bytes, as
	// Go compares strings.
	byteOrder() string
}

// bindDollar rewrites ? into $1, $2, …
func bindDollar(query string) string { return sqlx.Dollar(query) }

// queryInt64 runs a query that returns one integer (NULL reads as 0).
func queryInt64(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	return sqlx.QueryInt64(ctx, q, query, args...)
}
