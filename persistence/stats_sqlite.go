package persistence

import (
	"context"
	"errors"
	"io/fs"
	"os"
)

var _ statsDialect = sqliteDialect{}

// payloadBytes: the bytes of a TEXT payload in the database's encoding
// (UTF-8), of a BLOB as they are, without a copy.
func (sqliteDialect) payloadBytes() string { return "octet_length(payload)" }

// payloadText reads a payload stored as a BLOB as text, so that it is
// not taken for SQLite's binary JSONB.
func (sqliteDialect) payloadText(key string) string {
	return "json_extract(CASE WHEN typeof(payload) = 'blob' THEN CAST(payload AS TEXT) ELSE payload END, '$." + key + "')"
}

// databaseStats reads the page counts with pragmas, the size of each
// b-tree from the dbstat virtual table, and the file sizes from the file
// system.
func (sqliteDialect) databaseStats(ctx context.Context, q querier, t Target) (DatabaseStats, error) {
	var db DatabaseStats
	for _, p := range []struct {
		pragma string
		v      *int64
	}{{"page_size", &db.PageSize}, {"page_count", &db.PageCount}, {"freelist_count", &db.FreePages}} {
		v, err := queryInt64(ctx, q, "PRAGMA main."+p.pragma)
		if err != nil {
			return db, err
		}
		*p.v = v
	}
	db.Bytes = db.PageSize * db.PageCount
	if !t.Memory {
		var err error
		if db.FileBytes, err = fileSize(t.DSN); err != nil {
			return db, err
		}
		if db.WALBytes, err = fileSize(t.DSN + "-wal"); err != nil {
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
		var ts TableStats
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
