package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The transaction-scoped advisory locks of PostgreSQL, in the two-key
// space with 0x70656f6e ("peon") as the first key. appendLock serializes
// the appenders of one events table: its second key is the table's OID,
// resolved through the search_path exactly as the INSERT that follows, so
// stores in different schemas of one database do not wait for each other
// and every session that writes to the same table takes the same lock.
// migrateLock serializes migrations of one schema (the first of the
// search_path), before the tables exist; a hash collision only makes two
// schemas wait for each other. notifyChannel names the channel appends
// notify on by the same OID, so a listener hears the appends to its own
// events table only.
const (
	appendLock    = "SELECT " + appendLockCall
	migrateLock   = "SELECT pg_advisory_xact_lock(1885695854, hashtext('migrate:' || current_schema()))"
	notifyChannel = "'peon_events_' || 'events'::regclass::oid"

	appendLockCall = "pg_advisory_xact_lock(1885695854, 'events'::regclass::oid::int4)"
	// appendTryLock is appendLock that does not wait: it returns whether
	// it got the lock.
	appendTryLock = "SELECT pg_try_advisory_xact_lock(1885695854, 'events'::regclass::oid::int4)"
)

// appendLockChecked is appendLock in a transaction that may be the
// caller's: it reads the transaction's isolation and takes the lock only
// under READ COMMITTED (or READ UNCOMMITTED, which PostgreSQL runs as READ
// COMMITTED). Under REPEATABLE READ and SERIALIZABLE the transaction's
// snapshot is taken at its first statement, which may be before the lock
// was granted, so the head and versions read after it could be stale.
const appendLockChecked = "SELECT current_setting('transaction_isolation'), " +
	"CASE WHEN current_setting('transaction_isolation') IN ('read committed', 'read uncommitted') " +
	"THEN " + appendLockCall + "::text END"

// beginReadCommitted begins the store's own append transactions in the
// isolation the append lock needs, whatever the server's or the session's
// default_transaction_isolation.
const beginReadCommitted = "BEGIN ISOLATION LEVEL READ COMMITTED"

// postgresDialect is the server engine, through pgx's database/sql driver.
//
// Appenders take a transaction-scoped advisory lock before they read the
// last sequence, so sequences are taken in commit order and a reader that
// resumes after the last sequence it saw cannot skip a transaction that
// commits late. See docs/ORDERING.md.
type postgresDialect struct{}

func (postgresDialect) name() string             { return "postgres" }
func (postgresDialect) entDialect() string       { return "postgres" }
func (postgresDialect) bind(query string) string { return bindDollar(query) }
func (postgresDialect) maxArgs() int             { return 65000 }

func (postgresDialect) appendTxOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
}

func (postgresDialect) lockAppend(ctx context.Context, tx querier) error {
	rows, err := tx.QueryContext(ctx, appendLockChecked)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		isolation string
		locked    sql.NullString
	)
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(&isolation, &locked); err != nil {
		return err
	}
	if !locked.Valid {
		return fmt.Errorf("%w: the transaction is %s; on PostgreSQL an append needs READ COMMITTED "+
			"(the default: begin it with sql.TxOptions{Isolation: sql.LevelReadCommitted})",
			ErrTxIsolation, strings.ToUpper(isolation))
	}
	return rows.Close()
}

func (postgresDialect) beginAppendSQL() []string { return []string{beginReadCommitted, appendTryLock} }

func (postgresDialect) lockAppendSQL() string { return appendLock }

// commitOutcome reads the error of the pipeline that ends in an append's
// COMMIT. The pipeline is one pgx batch with one Sync at its end: after an
// error the server skips every statement up to the Sync.
//
//   - An error the server sent for a statement before the COMMIT (even a
//     FATAL one: the session ended there): the COMMIT never ran.
//   - An ERROR the server sent for the COMMIT itself (a deferred
//     constraint, a serialization failure): it rolled back. Not one of
//     class 57 (operator intervention: a cancel, a terminated backend),
//     which can interrupt a session between its commit and the answer;
//     not FATAL or PANIC, which end the session there too.
//   - An error pgx reports as safe to retry: nothing was sent.
//   - Every statement answered, the COMMIT too, and the end of the
//     pipeline failed: committed.
//
// Anything else (the connection broke, the context ended, while the
// COMMIT may have been on its way or running) is unknown.
func (postgresDialect) commitOutcome(err error, commit int) commitResult {
	var pe *pipeError
	if !errors.As(err, &pe) {
		return commitUnknown
	}
	if pe.i > commit {
		return committed
	}
	var pg *pgconn.PgError
	if errors.As(pe.err, &pg) {
		if pe.i < commit {
			return commitFailed
		}
		if pg.Severity == "ERROR" && !strings.HasPrefix(pg.Code, "57") {
			return commitFailed
		}
		return commitUnknown
	}
	if pgconn.SafeToRetry(pe.err) {
		return commitFailed
	}
	return commitUnknown
}

// storedAfterAppends takes the append lock in a transaction of its own on
// a connection from db, which waits until every append transaction that
// held it has ended (an append whose client is gone holds it until the
// server notices and ends the session), reads whether the event is
// stored, and rolls back: one round trip.
func (d postgresDialect) storedAfterAppends(ctx context.Context, db *sql.DB, eventID string) (bool, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var found bool
	err = d.pipeline(ctx, conn, []pipeStmt{
		{what: "begin", query: beginReadCommitted},
		{what: "wait for appends", query: appendLock},
		{what: "look up", query: "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1)", args: []any{eventID}, dest: []any{&found}},
		{what: "rollback", query: "ROLLBACK"},
	})
	if err != nil {
		discard(conn)
		return false, err
	}
	return found, nil
}

// pipeline sends stmts as one pgx batch, one round trip once pgx has
// prepared them on the connection. The server runs them one after the
// other, each with a snapshot of its own under READ COMMITTED, and skips
// those after a failed one.
func (postgresDialect) pipeline(ctx context.Context, conn *sql.Conn, stmts []pipeStmt) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is a %T, not pgx's", dc)
		}
		var b pgx.Batch
		for _, st := range stmts {
			b.Queue(st.query, st.args...)
		}
		br := c.Conn().SendBatch(ctx, &b)
		for i, st := range stmts {
			var err error
			if st.dest != nil {
				err = br.QueryRow().Scan(st.dest...)
			} else {
				var tag pgconn.CommandTag
				tag, err = br.Exec()
				if st.affected != nil {
					*st.affected = tag.RowsAffected()
				}
			}
			if err != nil {
				br.Close()
				return &pipeError{i: i, what: st.what, err: err}
			}
		}
		if err := br.Close(); err != nil {
			return &pipeError{i: len(stmts), what: "end of pipeline", err: err}
		}
		return nil
	})
}

func (postgresDialect) lastSequence(ctx context.Context, tx querier) (int64, error) {
	return queryInt64(ctx, tx, "SELECT MAX(sequence) FROM events")
}

// lastSequenceSQL is lastSequence as an expression, so readHead reads it
// with the streams' versions in one round trip.
func (postgresDialect) lastSequenceSQL() string { return "(SELECT MAX(sequence) FROM events)" }

func (postgresDialect) notify(ctx context.Context, tx querier, head int64) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_notify("+notifyChannel+", $1)", strconv.FormatInt(head, 10))
	return err
}

// notifyingInsert runs the INSERT as a data-modifying CTE, which runs
// whether or not the query reads it, beside the pg_notify: one round trip
// for both. The notification is sent at commit, and not at all on a
// rollback (to a savepoint too).
func (postgresDialect) notifyingInsert() (prefix, suffix string) {
	return "WITH ins AS (", ") SELECT pg_notify(" + notifyChannel + ", ?)"
}

func (postgresDialect) lockMigrate(ctx context.Context, tx querier) error {
	_, err := tx.ExecContext(ctx, migrateLock)
	return err
}

// createShadow copies table's columns with LIKE. A rollback drops the
// table with the rest of the transaction, a commit through ON COMMIT DROP.
func (postgresDialect) createShadow(ctx context.Context, tx querier, table, shadow string) error {
	_, err := tx.ExecContext(ctx, "CREATE TEMP TABLE "+shadow+" (LIKE "+table+") ON COMMIT DROP")
	return err
}

// shadowTables creates each temporary table with LIKE, keys and indexes
// included, in the session's temp schema, which PostgreSQL searches first
// for a relation. pgx keeps the statements it prepared on a connection,
// and their plans keep naming the tables they were planned against, so it
// drops them first. It checks that each name now reaches the temporary
// table.
func (postgresDialect) shadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error) {
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("shadow tables: unexpected driver connection %T", dc)
		}
		return c.Conn().DeallocateAll(ctx)
	}); err != nil {
		return nil, err
	}
	main := map[string]string{}
	for _, t := range tables {
		var q string
		if err := conn.QueryRowContext(ctx, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "+
			"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)", t).Scan(&q); err != nil {
			return nil, fmt.Errorf("shadow %s: %w", t, err)
		}
		if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE "+t+" (LIKE "+q+" INCLUDING ALL)"); err != nil {
			return nil, fmt.Errorf("shadow %s: %w", t, err)
		}
		var temp bool
		if err := conn.QueryRowContext(ctx, "SELECT c.relnamespace = pg_my_temp_schema() FROM pg_class c WHERE c.oid = to_regclass($1)", t).Scan(&temp); err != nil {
			return nil, fmt.Errorf("shadow %s: %w", t, err)
		}
		if !temp {
			return nil, fmt.Errorf("shadow %s: the unqualified name does not reach the temporary table (does the search_path name pg_temp before the table's schema?)", t)
		}
		main[t] = q
	}
	return main, nil
}

// distinct compares the values as text: json has no equality operator,
// and text is how Verify reports them.
func (postgresDialect) distinct(a, b string) string {
	return a + "::text IS DISTINCT FROM " + b + "::text"
}

// byteOrder names the C collation, which compares bytes whatever the
// database's locale.
func (postgresDialect) byteOrder() string { return ` COLLATE "C"` }

// revisionTable is the table as the atlas CLI creates it on PostgreSQL.
func (postgresDialect) revisionTable() string {
	return `CREATE TABLE IF NOT EXISTS "atlas_schema_revisions" (` +
		`"version" character varying NOT NULL, "description" character varying NOT NULL, ` +
		`"type" bigint NOT NULL DEFAULT 2, "applied" bigint NOT NULL DEFAULT 0, ` +
		`"total" bigint NOT NULL DEFAULT 0, "executed_at" timestamptz NOT NULL, ` +
		`"execution_time" bigint NOT NULL, "error" text NULL, "error_stmt" text NULL, ` +
		`"hash" character varying NOT NULL, "partial_hashes" jsonb NULL, ` +
		`"operator_version" character varying NOT NULL, PRIMARY KEY ("version"))`
}

// snapshotBegin: the first statement takes the snapshot that the whole
// transaction reads.
func (postgresDialect) snapshotBegin() string { return "BEGIN ISOLATION LEVEL REPEATABLE READ" }
