package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

var _ engine.Statser = Engine{}

// PayloadBytes is the bytes of a TEXT payload in the database's encoding
// (UTF-8), of a BLOB as they are, without a copy.
func (Engine) PayloadBytes() string { return "octet_length(payload)" }

// PayloadText reads a payload stored as a BLOB as text, so that it is
// not taken for SQLite's binary JSONB.
func (Engine) PayloadText(key string) string {
	return "json_extract(CASE WHEN typeof(payload) = 'blob' THEN CAST(payload AS TEXT) ELSE payload END, '$." + key + "')"
}

// DatabaseStats reads the page counts with pragmas, the size of each
// b-tree from the dbstat virtual table, and the file sizes from the file
// system.
func (e Engine) DatabaseStats(ctx context.Context, q engine.Querier, dsn string) (engine.DatabaseStats, error) {
	var db engine.DatabaseStats
	for _, p := range []struct {
		pragma string
		v      *int64
	}{{"page_size", &db.PageSize}, {"page_count", &db.PageCount}, {"freelist_count", &db.FreePages}} {
		v, err := sqlx.QueryInt64(ctx, q, "PRAGMA main."+p.pragma)
		if err != nil {
			return db, err
		}
		*p.v = v
	}
	db.Bytes = db.PageSize * db.PageCount
	if !e.Memory {
		var err error
		if db.FileBytes, err = fileSize(dsn); err != nil {
			return db, err
		}
		if db.WALBytes, err = fileSize(dsn + "-wal"); err != nil {
			return db, err
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT m.tbl_name,
			COALESCE(SUM(CASE WHEN m.type = 'table' THEN d.pgsize ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN m.type = 'index' THEN d.pgsize ELSE 0 END), 0)
		FROM dbstat('main', 1) d JOIN main.sqlite_master m ON m.name = d.name
		GROUP BY m.tbl_name ORDER BY m.tbl_name`)
	if err != nil {
		return db, err
	}
	defer rows.Close()
	for rows.Next() {
		var ts engine.TableStats
		if err := rows.Scan(&ts.Table, &ts.TableBytes, &ts.IndexBytes); err != nil {
			return db, err
		}
		ts.TotalBytes = ts.TableBytes + ts.IndexBytes
		db.Tables = append(db.Tables, ts)
	}
	return db, rows.Err()
}

// fileSize is the size of the file at path, 0 when there is none.
func fileSize(path string) (int64, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// vacuumStep is how many free pages one incremental_vacuum gives back.
const vacuumStep = 1024

// Reclaim gives free pages back to the file system: PRAGMA
// incremental_vacuum on a file in incremental mode (new files are, see
// PrepareNew), or with full a VACUUM, which first turns the file to
// incremental mode; then a checkpoint that truncates the WAL, so that the
// file shrinks now.
func (e Engine) Reclaim(ctx context.Context, db *sql.DB, full bool) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	mode, err := sqlx.QueryInt64(ctx, conn, "PRAGMA main.auto_vacuum")
	if err != nil {
		return err
	}
	var stmts []string
	switch {
	case full && mode != autoVacuumIncremental:
		stmts = []string{"PRAGMA main.auto_vacuum = INCREMENTAL", "VACUUM"}
	case full:
		stmts = []string{"VACUUM"}
	case mode == autoVacuumIncremental:
		// In steps, each its own short write transaction, so that
		// appends go on between them.
		for {
			free, err := sqlx.QueryInt64(ctx, conn, "PRAGMA main.freelist_count")
			if err != nil {
				return err
			}
			if free == 0 {
				break
			}
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA main.incremental_vacuum(%d)", min(free, vacuumStep))); err != nil {
				return fmt.Errorf("incremental_vacuum: %w", err)
			}
			if !e.Memory {
				if _, err := conn.ExecContext(ctx, "PRAGMA main.wal_checkpoint(PASSIVE)"); err != nil {
					return err
				}
			}
		}
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if e.Memory {
		return nil
	}
	return truncateWAL(ctx, conn)
}

// truncateWait is how long the checkpoint that truncates the WAL waits
// for readers of an older snapshot, and for a writer, before it gives up.
const truncateWait = 50 * time.Millisecond

// truncateWAL checkpoints the WAL and truncates it, so that the space it
// held goes back now, unless a reader holds an older snapshot (an export,
// a Stats or Verify) or a writer is busy for longer than truncateWait:
// then the WAL keeps its size until a later checkpoint. The wait is
// short because a TRUNCATE checkpoint holds the write lock while it
// waits for readers: with the connection's busy timeout every Append
// would wait for the end of the slowest reader.
func truncateWAL(ctx context.Context, conn *sql.Conn) (err error) {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", truncateWait.Milliseconds())); err != nil {
		return err
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); rerr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // not back in the pool with a short timeout
			err = cmp.Or(err, rerr)
		}
	}()
	// Busy (a reader or writer in the way) is a row, not an error.
	_, err = conn.ExecContext(ctx, "PRAGMA main.wal_checkpoint(TRUNCATE)")
	return err
}

// PrepareNew readies an empty database for its first migration: it turns
// on incremental vacuum, which SQLite can only set before the first
// table (or with a full VACUUM), so that compaction gives pages back with
// PRAGMA incremental_vacuum.
func (e Engine) PrepareNew(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{"PRAGMA main.auto_vacuum = INCREMENTAL", "VACUUM"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
