// Package sqlite is the embedded engine of the store, through
// modernc.org/sqlite (no cgo): a database file, or a private in-memory
// database, which is a mode of this engine.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

// Engine is the embedded engine, through modernc.org/sqlite.
// Writers are serialized by SQLite itself: every transaction begins
// IMMEDIATE (the DSN's _txlock), which takes the database's write lock.
type Engine struct {
	// Memory: the database is a private in-memory one, which lives as
	// long as its one connection.
	Memory bool
}

// Features are one writer at a time; a private database when in memory,
// a file otherwise;
// projection writes go through the store's statement cache.
func (e Engine) Features() engine.Features {
	return engine.Features{SerialWrites: true, Private: e.Memory, File: !e.Memory, PreparesProjections: true, RevisionTimesAsText: true}
}

// Name is "sqlite".
func (Engine) Name() string { return "sqlite" }

// EntDialect is "sqlite3".
func (Engine) EntDialect() string { return "sqlite3" }

// SystemName is "sqlite".
func (Engine) SystemName() string { return "sqlite" }

// Bind leaves ? placeholders as they are.
func (Engine) Bind(query string) string { return query }

// MaxArgs stays under SQLITE_MAX_VARIABLE_NUMBER (32,766).
func (Engine) MaxArgs() int { return 32000 }

// AppendTxOptions is nil: the DSN's _txlock makes every transaction
// IMMEDIATE, and SQLite transactions are serializable.
func (Engine) AppendTxOptions() *sql.TxOptions { return nil }

// LockAppend does nothing: the IMMEDIATE transaction holds the write lock.
func (Engine) LockAppend(context.Context, engine.Querier) error { return nil }

// LastSequence reads AUTOINCREMENT's own counter, so a number is never
// reused even if rows were removed by hand, or the last sequence of a
// pruned stream when that is higher (an import of a pruned store sets
// the counter only as far as its last event).
func (e Engine) LastSequence(ctx context.Context, tx engine.Querier) (int64, error) {
	return sqlx.QueryInt64(ctx, tx, "SELECT "+e.LastSequenceSQL())
}

// LastSequenceSQL is LastSequence as an expression, for the head reads.
func (Engine) LastSequenceSQL() string {
	return "MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), " +
		"COALESCE((SELECT MAX(last_sequence) FROM stream_tombstones), 0))"
}

// Notify does nothing: other processes watch PRAGMA data_version.
func (Engine) Notify(context.Context, engine.Querier, int64) error { return nil }

// NotifyingInsert is empty: Notify does nothing.
func (Engine) NotifyingInsert() (prefix, suffix string) { return "", "" }

// CreateShadow declares each column with the type of table's: modernc
// reads a datetime column as time.Time by its declared type, which CREATE
// TABLE AS SELECT would lose. A rollback drops the table with the rest of
// the transaction.
func (Engine) CreateShadow(ctx context.Context, tx engine.Querier, table, shadow string) error {
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

// CreateStaging declares each column with the type of events' own (see
// CreateShadow); sequence becomes the rowid, so the staged events are
// stored, and read back, in their order.
func (Engine) CreateStaging(ctx context.Context, conn *sql.Conn, name string) error {
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
	_, err = conn.ExecContext(ctx, "CREATE TEMP TABLE "+name+" ("+strings.Join(cols, ", ")+`, UNIQUE ("event_id"), UNIQUE ("stream_id", "stream_version"))`)
	return err
}

// ShadowTables copies each table's CREATE statements from the schema into
// the temp schema, which SQLite searches first for an unqualified name.
// AUTOINCREMENT goes: it would create temp.sqlite_sequence, which would
// hide the main one that lastSequence reads; the copied rows get fresh
// ids anyway.
func (Engine) ShadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error) {
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

// Distinct is IS NOT, which counts NULL as a value.
func (Engine) Distinct(a, b string) string { return a + " IS NOT " + b }

// ByteOrder is empty: SQLite's default collation, BINARY, compares bytes.
func (Engine) ByteOrder() string { return "" }

// LockMigrate does nothing: the IMMEDIATE transaction holds the write lock.
func (Engine) LockMigrate(context.Context, engine.Querier) error { return nil }

// TablesQuery lists the main database's tables and views, SQLite's own excluded.
func (Engine) TablesQuery() string {
	return `SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`
}

// AllowTempWrites turns off the query_only pragma that a read-only
// store's connections open with.
func (Engine) AllowTempWrites(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "PRAGMA query_only = 0")
	return err
}

// RevisionTable is the table as the atlas CLI creates it on SQLite.
func (Engine) RevisionTable() string {
	return "CREATE TABLE IF NOT EXISTS `atlas_schema_revisions` (" +
		"`version` text NOT NULL, `description` text NOT NULL, " +
		"`type` integer NOT NULL DEFAULT 2, `applied` integer NOT NULL DEFAULT 0, " +
		"`total` integer NOT NULL DEFAULT 0, `executed_at` datetime NOT NULL, " +
		"`execution_time` integer NOT NULL, `error` text NULL, `error_stmt` text NULL, " +
		"`hash` text NOT NULL, `partial_hashes` json NULL, `operator_version` text NOT NULL, " +
		"PRIMARY KEY (`version`))"
}

// TextTime selects a datetime column as its stored text: an expression
// has no declared type, so modernc hands over the text instead of parsing
// it (see persistence's storedTime). Unary + is SQLite's no-op.
func (Engine) TextTime(col string) string { return "+" + col }

// SnapshotBegin is DEFERRED: the first read pins the WAL snapshot, and
// no write lock is taken until a write to the main database.
func (Engine) SnapshotBegin() string { return "BEGIN" }

// IntegrityCheck is PRAGMA integrity_check of the main database (not the
// temp one that Verify's rebuild lives in). quick_check would be faster
// but does not check that each index holds exactly its table's rows,
// which is the damage a replay never sees. A page too damaged for the
// check to go on fails it with SQLITE_CORRUPT, which is a finding too.
func (Engine) IntegrityCheck(ctx context.Context, q engine.Querier, _ []string, max int) (name, note string, found []engine.Problem, err error) {
	err = func() error {
		rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA main.integrity_check(%d)", max))
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
				found = append(found, engine.Problem{Detail: strings.TrimPrefix(msg, "*** in database main ***\n")})
			}
		}
		return rows.Err()
	}()
	var se *modernc.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CORRUPT {
		found = append(found, engine.Problem{Detail: "integrity_check stopped: " + err.Error()})
		err = nil
	}
	if err != nil {
		return "", "", nil, err
	}
	return "integrity_check", "", found, nil
}

// DiskFull is SQLITE_FULL.
func (Engine) DiskFull(err error) bool {
	var se *modernc.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}
