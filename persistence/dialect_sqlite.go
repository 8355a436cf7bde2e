package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect is the embedded engine, through modernc.org/sqlite.
// Writers are serialized by SQLite itself: every transaction begins
// IMMEDIATE (the DSN's _txlock), which takes the database's write lock.
type sqliteDialect struct{}

func (sqliteDialect) name() string             { return "sqlite" }
func (sqliteDialect) entDialect() string       { return "sqlite3" }
func (sqliteDialect) bind(query string) string { return query }

// maxArgs stays under SQLITE_MAX_VARIABLE_NUMBER (32,766).
func (sqliteDialect) maxArgs() int { return 32000 }

// appendTxOptions is nil: the DSN's _txlock makes every transaction
// IMMEDIATE, and SQLite transactions are serializable.
func (sqliteDialect) appendTxOptions() *sql.TxOptions { return nil }

func (sqliteDialect) lockAppend(context.Context, querier) error { return nil }

// lastSequence reads AUTOINCREMENT's own counter, so a number is never
// reused even if rows were removed by hand.
func (sqliteDialect) lastSequence(ctx context.Context, tx querier) (int64, error) {
	return queryInt64(ctx, tx, "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
}

// lastSequenceSQL is lastSequence as an expression, for readHead.
func (sqliteDialect) lastSequenceSQL() string {
	return "(SELECT seq FROM sqlite_sequence WHERE name = 'events')"
}

// notify does nothing: other processes watch PRAGMA data_version.
func (sqliteDialect) notify(context.Context, querier, int64) error { return nil }

func (sqliteDialect) notifyingInsert() (prefix, suffix string) { return "", "" }

// createShadow declares each column with the type of table's: modernc
// reads a datetime column as time.Time by its declared type, which CREATE
// TABLE AS SELECT would lose. A rollback drops the table with the rest of
// the transaction.
func (sqliteDialect) createShadow(ctx context.Context, tx querier, table, shadow string) error {
	rows, err := tx.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		return err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return err
		}
		cols = append(cols, `"`+name+`" `+typ)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "CREATE TEMP TABLE "+shadow+" ("+strings.Join(cols, ", ")+")")
	return err
}

// createStaging declares each column with the type of events' own (see
// createShadow); sequence becomes the rowid, so the staged events are
// stored, and read back, in their order.
func (sqliteDialect) createStaging(ctx context.Context, conn *sql.Conn, name string) error {
	rows, err := conn.QueryContext(ctx, "SELECT name, type FROM main.pragma_table_info('events') ORDER BY cid")
	if err != nil {
		return err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			return err
		}
		if col == "sequence" {
			typ = "integer PRIMARY KEY"
		}
		cols = append(cols, `"`+col+`" `+typ)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "CREATE TEMP TABLE "+name+" ("+strings.Join(cols, ", ")+`, UNIQUE ("event_id"))`)
	return err
}

// shadowTables copies each table's CREATE statements from the schema into
// the temp schema, which SQLite searches first for an unqualified name.
// AUTOINCREMENT goes: it would create temp.sqlite_sequence, which would
// hide the main one that lastSequence reads; the copied rows get fresh
// ids anyway.
func (sqliteDialect) shadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error) {
	main := map[string]string{}
	for _, t := range tables {
		rows, err := conn.QueryContext(ctx, "SELECT type, sql FROM main.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'table' DESC, name", t)
		if err != nil {
			return nil, err
		}
		var stmts []string
		for rows.Next() {
			var typ, q string
			if err := rows.Scan(&typ, &q); err != nil {
				rows.Close()
				return nil, err
			}
			switch {
			case typ == "table" && strings.HasPrefix(q, "CREATE TABLE "):
				q = "CREATE TEMP TABLE " + strings.Replace(strings.TrimPrefix(q, "CREATE TABLE "), " AUTOINCREMENT", "", 1)
			case typ == "index" && strings.HasPrefix(q, "CREATE INDEX "):
				q = "CREATE INDEX temp." + strings.TrimPrefix(q, "CREATE INDEX ")
			case typ == "index" && strings.HasPrefix(q, "CREATE UNIQUE INDEX "):
				q = "CREATE UNIQUE INDEX temp." + strings.TrimPrefix(q, "CREATE UNIQUE INDEX ")
			default:
				rows.Close()
				return nil, fmt.Errorf("shadow %s: unexpected schema statement %q", t, q)
			}
			stmts = append(stmts, q)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("shadow %s: no such table", t)
		}
		for _, q := range stmts {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("shadow %s: %w", t, err)
			}
		}
		main[t] = "main." + t
	}
	return main, nil
}

func (sqliteDialect) distinct(a, b string) string { return a + " IS NOT " + b }

// byteOrder is empty: SQLite's default collation, BINARY, compares bytes.
func (sqliteDialect) byteOrder() string { return "" }

func (sqliteDialect) lockMigrate(context.Context, querier) error { return nil }

func (sqliteDialect) tablesQuery() string {
	return `SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`
}

// allowTempWrites turns off the query_only pragma that a read-only
// store's connections open with.
func (sqliteDialect) allowTempWrites(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "PRAGMA query_only = 0")
	return err
}

// revisionTable is the table as the atlas CLI creates it on SQLite.
func (sqliteDialect) revisionTable() string {
	return "CREATE TABLE IF NOT EXISTS `atlas_schema_revisions` (" +
		"`version` text NOT NULL, `description` text NOT NULL, " +
		"`type` integer NOT NULL DEFAULT 2, `applied` integer NOT NULL DEFAULT 0, " +
		"`total` integer NOT NULL DEFAULT 0, `executed_at` datetime NOT NULL, " +
		"`execution_time` integer NOT NULL, `error` text NULL, `error_stmt` text NULL, " +
		"`hash` text NOT NULL, `partial_hashes` json NULL, `operator_version` text NOT NULL, " +
		"PRIMARY KEY (`version`))"
}

// textTime selects a datetime column as its stored text: an expression
// has no declared type, so modernc hands over the text instead of parsing
// it (see storedTime). Unary + is SQLite's no-op.
func (sqliteDialect) textTime(col string) string { return "+" + col }

// snapshotBegin is DEFERRED: the first read pins the WAL snapshot, and
// no write lock is taken until a write to the main database.
func (sqliteDialect) snapshotBegin() string { return "BEGIN" }

// integrityCheck is PRAGMA integrity_check of the main database (not the
// temp one that Verify's rebuild lives in). quick_check would be faster
// but does not check that each index holds exactly its table's rows,
// which is the damage a replay never sees. A page too damaged for the
// check to go on fails it with SQLITE_CORRUPT, which is a finding too.
func (sqliteDialect) integrityCheck(ctx context.Context, q querier) (name, note string, found []Problem, err error) {
	err = func() error {
		rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA main.integrity_check(%d)", maxIntegrityFindings))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var msg string
			if err := rows.Scan(&msg); err != nil {
				return err
			}
			if msg != "ok" { // one finding; the first names the database, which is main
				found = append(found, Problem{Kind: "integrity", Detail: strings.TrimPrefix(msg, "*** in database main ***\n")})
			}
		}
		return rows.Err()
	}()
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CORRUPT {
		found = append(found, Problem{Kind: "integrity", Detail: "integrity_check stopped: " + err.Error()})
		err = nil
	}
	if err != nil {
		return "", "", nil, err
	}
	return "integrity_check", "", found, nil
}
