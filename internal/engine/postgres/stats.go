package postgres

import (
	"context"
	"database/sql"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

var _ engine.Statser = Engine{}

// PayloadBytes is a json column keeps its input text as it was given.
func (Engine) PayloadBytes() string { return "octet_length(payload::text)" }

// PayloadText reads the field with ->>.
func (Engine) PayloadText(key string) string { return "(payload->>'" + key + "')" }

// DatabaseStats reads pg_database_size and, for each table of the
// current schema, pg_relation_size, pg_indexes_size and
// pg_total_relation_size.
func (Engine) DatabaseStats(ctx context.Context, q engine.Querier, _ string) (engine.DatabaseStats, error) {
	var db engine.DatabaseStats
	var err error
	if db.Bytes, err = sqlx.QueryInt64(ctx, q, "SELECT pg_database_size(current_database())"); err != nil {
		return db, err
	}
	rows, err := q.QueryContext(ctx, `SELECT c.relname::text, pg_relation_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
		FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relkind IN ('r', 'p')
		ORDER BY c.relname::text COLLATE "C"`)
	if err != nil {
		return db, err
	}
	defer rows.Close()
	for rows.Next() {
		var ts engine.TableStats
		if err := rows.Scan(&ts.Table, &ts.TableBytes, &ts.IndexBytes, &ts.TotalBytes); err != nil {
			return db, err
		}
		db.Tables = append(db.Tables, ts)
	}
	return db, rows.Err()
}

// Reclaim leaves the dead rows to autovacuum, or with full VACUUMs the
// tables a compaction changes now.
func (Engine) Reclaim(ctx context.Context, db *sql.DB, full bool) error {
	if !full {
		return nil
	}
	_, err := db.ExecContext(ctx, "VACUUM (ANALYZE) events, compactions, compacted_commands")
	return err
}
