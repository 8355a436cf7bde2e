package persistence

import "context"

var _ statsDialect = postgresDialect{}

// payloadBytes: a json column keeps its input text as it was given.
func (postgresDialect) payloadBytes() string { return "octet_length(payload::text)" }

func (postgresDialect) payloadText(key string) string { return "(payload->>'" + key + "')" }

// databaseStats reads pg_database_size and, for each table of the
// current schema, pg_relation_size, pg_indexes_size and
// pg_total_relation_size.
func (postgresDialect) databaseStats(ctx context.Context, q querier, _ Target) (DatabaseStats, error) {
	var db DatabaseStats
	var err error
	if db.Bytes, err = queryInt64(ctx, q, "SELECT pg_database_size(current_database())"); err != nil {
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
		var ts TableStats
		if err := rows.Scan(&ts.Table, &ts.TableBytes, &ts.IndexBytes, &ts.TotalBytes); err != nil {
			return db, err
		}
		db.Tables = append(db.Tables, ts)
	}
	return db, rows.Err()
}
