// Package postgres is the server engine of the store, through pgx's
// database/sql driver: advisory locks, pipelined appends, LISTEN/NOTIFY.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
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
// Notify on by the same OID, so a listener hears the appends to its own
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

// Engine is the server engine, through pgx's database/sql driver.
//
// Appenders take a transaction-scoped advisory lock before they read the
// last sequence, so sequences are taken in commit order and a reader that
// resumes after the last sequence it saw cannot skip a transaction that
// commits late. See docs/ORDERING.md.
type Engine struct{}

// Features are many writers, serialized by the append lock; projection
// writes are pipelined, not prepared by the store.
func (Engine) Features() engine.Features {
	return engine.Features{ArrayParameters: true, JSONPayloads: true}
}

// Name is "postgres".
func (Engine) Name() string { return "postgres" }

// EntDialect is "postgres".
func (Engine) EntDialect() string { return "postgres" }

// SystemName is "postgresql".
func (Engine) SystemName() string { return "postgresql" }

// Bind rewrites ? into $1, $2, …
func (Engine) Bind(query string) string { return sqlx.Dollar(query) }

// MaxArgs stays under the protocol's 65,535.
func (Engine) MaxArgs() int { return 65000 }

// AppendTxOptions are READ COMMITTED, which the append lock needs.
func (Engine) AppendTxOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
}

// LockAppend takes the append lock, under READ COMMITTED only.
func (Engine) LockAppend(ctx context.Context, tx engine.Querier) error {
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
		return &engine.IsolationError{Detail: "the transaction is " + strings.ToUpper(isolation) +
			"; on PostgreSQL an append needs READ COMMITTED " +
			"(the default: begin it with sql.TxOptions{Isolation: sql.LevelReadCommitted})"}
	}
	return rows.Close()
}

// BeginAppendSQL begins READ COMMITTED and tries the append lock.
func (Engine) BeginAppendSQL() []string { return []string{beginReadCommitted, appendTryLock} }

// LockAppendSQL waits for the append lock.
func (Engine) LockAppendSQL() string { return appendLock }

// CommitOutcome reads the error of the pipeline that ends in an append's
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
func (Engine) CommitOutcome(err error, commit int) engine.CommitResult {
	var pe *engine.PipeError
	if !errors.As(err, &pe) {
		return engine.CommitUnknown
	}
	if pe.I > commit {
		return engine.Committed
	}
	var pg *pgconn.PgError
	if errors.As(pe.Err, &pg) {
		if pe.I < commit {
			return engine.CommitFailed
		}
		if pg.Severity == "ERROR" && !strings.HasPrefix(pg.Code, "57") {
			return engine.CommitFailed
		}
		return engine.CommitUnknown
	}
	// A connection's error (not the server's) before the COMMIT's answer
	// leaves the outcome unknown, even where pgx calls it safe to retry:
	// the batch went out in one write, and a cut once reached the server
	// after its COMMIT while the error was reported at the first
	// statement (TestPostgresAppendCommitAnswerLost, under load). Only an
	// error before the first statement's answer that pgx says sent
	// nothing is a failure; otherwise the caller looks the batch up.
	if pe.I == 0 && pgconn.SafeToRetry(pe.Err) && !errors.Is(pe.Err, io.ErrUnexpectedEOF) {
		return engine.CommitFailed
	}
	return engine.CommitUnknown
}

// StoredAfterAppends takes the append lock in a transaction of its own on
// a connection from db, which waits until every append transaction that
// held it has ended (an append whose client is gone holds it until the
// server notices and ends the session), reads whether the event is
// stored, and rolls back: one round trip.
func (e Engine) StoredAfterAppends(ctx context.Context, db *sql.DB, eventID string) (bool, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var found bool
	err = e.Pipeline(ctx, conn, []engine.PipeStmt{
		{What: "begin", Query: beginReadCommitted},
		{What: "wait for appends", Query: appendLock},
		{What: "look up", Query: "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1)", Args: []any{eventID}, Dest: []any{&found}},
		{What: "rollback", Query: "ROLLBACK"},
	})
	if err != nil {
		engine.Discard(conn)
		return false, err
	}
	return found, nil
}

// Pipeline sends stmts as one pgx batch, one round trip once pgx has
// prepared them on the connection. The server runs them one after the
// other, each with a snapshot of its own under READ COMMITTED, and skips
// those after a failed one.
func (Engine) Pipeline(ctx context.Context, conn *sql.Conn, stmts []engine.PipeStmt) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is a %T, not pgx's", dc)
		}
		var b pgx.Batch
		for _, st := range stmts {
			b.Queue(st.Query, st.Args...)
		}
		br := c.Conn().SendBatch(ctx, &b)
		for i, st := range stmts {
			var err error
			if st.Dest != nil {
				err = br.QueryRow().Scan(st.Dest...)
			} else {
				var tag pgconn.CommandTag
				tag, err = br.Exec()
				if st.Affected != nil {
					*st.Affected = tag.RowsAffected()
				}
			}
			if err != nil {
				br.Close()
				return &engine.PipeError{I: i, What: st.What, Err: err}
			}
		}
		if err := br.Close(); err != nil {
			return &engine.PipeError{I: len(stmts), What: "end of pipeline", Err: err}
		}
		return nil
	})
}

// LastSequence is the highest sequence stored, or the last sequence of a
// pruned stream when that is higher: pruning the head of the log does not
// let its sequences be taken again.
func (e Engine) LastSequence(ctx context.Context, tx engine.Querier) (int64, error) {
	return sqlx.QueryInt64(ctx, tx, "SELECT "+e.LastSequenceSQL())
}

// LastSequenceSQL is LastSequence as an expression, so the head reads read it
// with the streams' versions in one round trip. GREATEST ignores NULLs.
func (Engine) LastSequenceSQL() string {
	return "GREATEST((SELECT MAX(sequence) FROM events), (SELECT MAX(last_sequence) FROM stream_tombstones))"
}

// Notify sends the head on the events table's channel at commit.
func (Engine) Notify(ctx context.Context, tx engine.Querier, head int64) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_notify("+notifyChannel+", $1)", strconv.FormatInt(head, 10))
	return err
}

// NotifyingInsert runs the INSERT as a data-modifying CTE, which runs
// whether or not the query reads it, beside the pg_notify: one round trip
// for both. The notification is sent at commit, and not at all on a
// rollback (to a savepoint too).
func (Engine) NotifyingInsert() (prefix, suffix string) {
	return "WITH ins AS (", ") SELECT pg_notify(" + notifyChannel + ", ?)"
}

// LockMigrate takes the schema's migration lock.
func (Engine) LockMigrate(ctx context.Context, tx engine.Querier) error {
	_, err := tx.ExecContext(ctx, migrateLock)
	return err
}

// TablesQuery lists the relations of the first schema of the search_path
// (none when it does not exist) that a query can read.
func (Engine) TablesQuery() string {
	return "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) " +
		"AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1"
}

// AllowTempWrites lets the session's transactions write again, which a
// read-only store's connections refuse (default_transaction_read_only).
func (Engine) AllowTempWrites(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SET default_transaction_read_only = off")
	return err
}

// CreateShadow copies table's columns with LIKE. A rollback drops the
// table with the rest of the transaction, a commit through ON COMMIT DROP.
func (Engine) CreateShadow(ctx context.Context, tx engine.Querier, table, shadow string) error {
	_, err := tx.ExecContext(ctx, "CREATE TEMP TABLE "+shadow+" (LIKE "+table+") ON COMMIT DROP")
	return err
}

// CreateStaging copies the columns of events with LIKE, without its
// identity, in the session's temp schema.
func (Engine) CreateStaging(ctx context.Context, conn *sql.Conn, name string) error {
	_, err := conn.ExecContext(ctx, "CREATE TEMP TABLE "+name+" (LIKE events, PRIMARY KEY (sequence), UNIQUE (event_id), UNIQUE (stream_id, stream_version))")
	return err
}

// ShadowTables creates each temporary table with LIKE, keys and indexes
// included, in the session's temp schema, which PostgreSQL searches first
// for a relation. pgx keeps the statements it prepared on a connection,
// and their plans keep naming the tables they were planned against, so it
// drops them first. It checks that each name now reaches the temporary
// table.
func (Engine) ShadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error) {
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

// Distinct compares the values as text: json has no equality operator,
// and text is how Verify reports them.
func (Engine) Distinct(a, b string) string {
	return a + "::text IS DISTINCT FROM " + b + "::text"
}

// ByteOrder names the C collation, which compares bytes whatever the
// database's locale.
func (Engine) ByteOrder() string { return ` COLLATE "C"` }

// RevisionTable is the table as the atlas CLI creates it on PostgreSQL.
func (Engine) RevisionTable() string {
	return `CREATE TABLE IF NOT EXISTS "atlas_schema_revisions" (` +
		`"version" character varying NOT NULL, "description" character varying NOT NULL, ` +
		`"type" bigint NOT NULL DEFAULT 2, "applied" bigint NOT NULL DEFAULT 0, ` +
		`"total" bigint NOT NULL DEFAULT 0, "executed_at" timestamptz NOT NULL, ` +
		`"execution_time" bigint NOT NULL, "error" text NULL, "error_stmt" text NULL, ` +
		`"hash" character varying NOT NULL, "partial_hashes" jsonb NULL, ` +
		`"operator_version" character varying NOT NULL, PRIMARY KEY ("version"))`
}

// SnapshotBegin: the first statement takes the snapshot that the whole
// transaction reads.
func (Engine) SnapshotBegin() string { return "BEGIN ISOLATION LEVEL REPEATABLE READ" }

// IntegrityCheck uses the amcheck extension when the database has it:
// bt_index_check with heapallindexed on every B-tree index of the store's
// tables, which finds an index whose entries are out of order or that
// misses a row of its table, and verify_heapam on each table, which finds
// damaged table pages. Both take only the lock a SELECT takes. PostgreSQL
// has no check of its own without the extension, and Verify does not
// install it (it changes nothing): then the note says so.
func (Engine) IntegrityCheck(ctx context.Context, q engine.Querier, tables []string, max int) (name, note string, found []engine.Problem, err error) {
	schema, err := sqlx.QueryString(ctx, q, "SELECT quote_ident(n.nspname) FROM pg_extension e "+
		"JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'")
	if err != nil {
		return "", "", nil, err
	}
	if schema == "" {
		return "", "the amcheck extension is not installed in this database, so the indexes and table pages were not checked; " +
			"`CREATE EXTENSION amcheck` (as a superuser) lets Verify check them", nil, nil
	}
	// denied turns a permission error into the note: amcheck's functions
	// are the superuser's unless granted.
	denied := func(err error) bool {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			note = "amcheck is installed but this role may not run it (" + pe.Message + "); " +
				"GRANT EXECUTE ON its functions bt_index_check and verify_heapam lets Verify check the indexes and table pages"
			return true
		}
		return false
	}

	rows, err := q.QueryContext(ctx, "SELECT format('%I.%I', n.nspname, ic.relname), tc.relname FROM pg_index i "+
		"JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid "+
		"JOIN pg_namespace n ON n.oid = ic.relnamespace JOIN pg_am am ON am.oid = ic.relam "+
		"WHERE am.amname = 'btree' AND tc.oid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t) ORDER BY 1", tables)
	if err != nil {
		return "", "", nil, err
	}
	type index struct{ name, table string }
	var indexes []index
	for rows.Next() {
		var ix index
		if err := rows.Scan(&ix.name, &ix.table); err != nil {
			rows.Close()
			return "", "", nil, err
		}
		indexes = append(indexes, ix)
	}
	if err := rows.Close(); err != nil {
		return "", "", nil, err
	}
	for _, ix := range indexes {
		_, err := q.ExecContext(ctx, "SELECT "+schema+".bt_index_check($1::regclass, true)", ix.name)
		var pe *pgconn.PgError
		switch {
		case err == nil:
		case denied(err):
			return "", note, nil, nil
		case errors.As(err, &pe) && strings.HasPrefix(pe.Code, "XX"): // data_corrupted, index_corrupted
			found = append(found, engine.Problem{Table: ix.table, Key: ix.name, Detail: pe.Message})
		default:
			return "", "", nil, fmt.Errorf("bt_index_check %s: %w", ix.name, err)
		}
	}
	for _, t := range tables {
		rows, err := q.QueryContext(ctx, "SELECT blkno, offnum, attnum, msg FROM "+schema+
			".verify_heapam(to_regclass($1)) LIMIT $2", t, max)
		if denied(err) {
			return "", note, nil, nil
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("verify_heapam %s: %w", t, err)
		}
		for rows.Next() {
			var block int64
			var offset, attnum sql.NullInt64
			var msg string
			if err := rows.Scan(&block, &offset, &attnum, &msg); err != nil {
				rows.Close()
				return "", "", nil, err
			}
			key := fmt.Sprintf("block %d", block)
			if offset.Valid {
				key += fmt.Sprintf(" tuple %d", offset.Int64)
			}
			if attnum.Valid {
				key += fmt.Sprintf(" column %d", attnum.Int64)
			}
			found = append(found, engine.Problem{Table: t, Key: key, Detail: msg})
		}
		if err := rows.Close(); err != nil {
			return "", "", nil, err
		}
	}
	if len(found) > max {
		found = found[:max]
	}
	return "amcheck", "", found, nil
}

// DiskFull is the disk_full error, 53100.
func (Engine) DiskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}
