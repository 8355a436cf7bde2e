package engine

import (
	"context"
	"database/sql"
)

// Statser is what the store's Stats reads differently on each engine.
type Statser interface {
	// PayloadBytes is an SQL expression of the bytes of the payload
	// column as stored.
	PayloadBytes() string
	// PayloadText is an SQL expression of the text of the payload's
	// top-level string field key.
	PayloadText(key string) string
	// DatabaseStats reads the size of the database at dsn, and of each
	// table of its (first) schema, through q, inside the snapshot it
	// reads.
	DatabaseStats(ctx context.Context, q Querier, dsn string) (DatabaseStats, error)
	// Reclaim gives the space of removed rows back after a compaction: on
	// SQLite the free pages of a file in incremental vacuum mode (with
	// full, a VACUUM of any file, which also turns it to that mode), on
	// PostgreSQL nothing (autovacuum does it) or, with full, a VACUUM of
	// the log's tables.
	Reclaim(ctx context.Context, db *sql.DB, full bool) error
}

// DatabaseStats is the size of a database; the store's DatabaseStats
// documents each field.
type DatabaseStats struct {
	Bytes                          int64
	FileBytes, WALBytes            int64
	PageSize, PageCount, FreePages int64
	Tables                         []TableStats
}

// TableStats is the space one table takes; see the store's TableStats.
type TableStats struct {
	Table                              string
	TableBytes, IndexBytes, TotalBytes int64
}
