package persistence

import (
	"context"
	"database/sql"

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
	// appendTxOptions are the options of the store's own transactions
	// that take the append lock or the migration lock (nil for the
	// driver's default).
	appendTxOptions() *sql.TxOptions
	// lockAppend serializes appenders for the rest of tx, so that
	// sequences are taken in commit order. It refuses (ErrTxIsolation) a
	// transaction whose reads after the lock could be stale.
	lockAppend(ctx context.Context, tx querier) error
	// lastSequence returns the highest sequence ever taken, inside the
	// append lock.
	lastSequence(ctx context.Context, tx querier) (int64, error)
	// lastSequenceSQL is lastSequence as a scalar expression, which
	// readHead folds into its query.
	lastSequenceSQL() string
	// notify tells other processes, at commit of tx, that the log grew.
	notify(ctx context.Context, tx querier, head int64) error
	// notifyingInsert is what turns an INSERT, written with ? placeholders,
	// into a statement that also does what notify does: prefix + INSERT +
	// suffix, with the head as one more argument after the INSERT's. Both
	// are empty when notify does nothing on this dialect.
	notifyingInsert() (prefix, suffix string)
	// revisionTable creates atlas_schema_revisions as the atlas CLI does.
	revisionTable() string
	// lockMigrate serializes migrating processes for the rest of tx.
	lockMigrate(ctx context.Context, tx querier) error
	// tablesQuery selects the names of the database's tables and views
	// (on PostgreSQL, of the first schema of the search_path), sorted,
	// the engine's own excluded.
	tablesQuery() string
	// allowTempWrites lifts, on one connection of a read-only store (see
	// Options.ReadOnly), the engine's refusal to write, for the temporary
	// tables Verify builds; the connection must never go back to the pool.
	allowTempWrites(ctx context.Context, conn *sql.Conn) error
	// createShadow creates shadow, an empty temporary table with the
	// columns and column types of table, that the end of tx drops.
	createShadow(ctx context.Context, tx querier, table, shadow string) error
	// createStaging creates on conn the temporary table name with the
	// columns and column types of events, sequence as its primary key and
	// event_id unique, for Import to stage its events in. It lives as long
	// as the connection.
	createStaging(ctx context.Context, conn *sql.Conn, name string) error
	// shadowTables creates on conn, for each of tables, a temporary table
	// of the same name, columns, keys and indexes, which the statements on
	// conn that name the table unqualified reach from then on instead of
	// it, and returns the qualified name of each table itself. conn must
	// never go back to the pool afterwards (see rebuildShadow).
	shadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error)
	// snapshotBegin starts, on a connection, a transaction that reads one
	// snapshot throughout and takes no write lock while it writes
	// temporary tables only.
	snapshotBegin() string
	// distinct is a condition that holds when the values of a and b
	// differ, NULL counting as a value; values that it finds the same
	// render as the same text.
	distinct(a, b string) string
	// byteOrder is the COLLATE clause that orders text by its bytes, as
	// Go compares strings.
	byteOrder() string
	// integrityCheck runs, through q, the engine's own check of the
	// database's pages and indexes, at most maxIntegrityFindings of them,
	// and returns its name and each damage it found as a problem of kind
	// "integrity". When the engine offers no such check here, name is
	// empty and note says why and what to do.
	integrityCheck(ctx context.Context, q querier) (name, note string, found []Problem, err error)
}

// pipeliner is implemented by a dialect whose driver can send several
// statements in one round trip. Append then runs in two round trips (see
// appendPipelined) instead of one per statement.
type pipeliner interface {
	// pipeline sends stmts on conn together and reads their results in
	// order, scanning the one row of each statement that has a dest. At
	// the first error the statements after it do not run, and pipeline
	// returns the error as a *pipeError, which names its statement.
	pipeline(ctx context.Context, conn *sql.Conn, stmts []pipeStmt) error
	// beginAppendSQL are the statements that begin an append's
	// transaction and try to take the append lock without waiting, each
	// one a statement of its own: the last returns one boolean, whether it
	// got the lock, and a statement sent after them reads with a snapshot
	// taken after the lock was granted.
	beginAppendSQL() []string
	// lockAppendSQL takes the append lock, waiting for it.
	lockAppendSQL() string
	// commitOutcome tells what err, the error of a pipeline whose
	// statement commit is the COMMIT of an append, says about whether the
	// transaction committed.
	commitOutcome(err error, commit int) commitResult
}

// pipeStmt is one statement of a pipeline.
type pipeStmt struct {
	what  string // what it does, for its error
	query string // with the dialect's placeholders
	args  []any
	dest  []any // where its one row goes; nil for a statement whose rows are not read
	// affected, when set and dest is nil, receives how many rows the
	// statement changed.
	affected *int64
}

// pipeError is the error of statement i of a pipeline; i is the number
// of statements when each was answered and the pipeline failed after.
type pipeError struct {
	i    int
	what string
	err  error
}

func (e *pipeError) Error() string { return e.what + ": " + e.err.Error() }
func (e *pipeError) Unwrap() error { return e.err }

// bindDollar rewrites ? into $1, $2, …
func bindDollar(query string) string { return sqlx.Dollar(query) }

// queryInt64 runs a query that returns one integer (NULL reads as 0).
func queryInt64(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	return sqlx.QueryInt64(ctx, q, query, args...)
}
