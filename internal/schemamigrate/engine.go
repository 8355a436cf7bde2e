package schemamigrate

import (
	"context"
	"database/sql"

	"github.com/peonhq/peon/internal/sqlx"
)

// Engine is what migrating needs of a database engine. Statements of this
// package are written with ? placeholders and passed through Bind.
type Engine interface {
	// Bind rewrites ? placeholders into the engine's own.
	Bind(query string) string
	// AppendTxOptions are the options of the transactions that take the
	// migration lock (nil for the driver's default).
	AppendTxOptions() *sql.TxOptions
	// LockMigrate serializes migrating processes for the rest of tx.
	LockMigrate(ctx context.Context, tx sqlx.Querier) error
	// RevisionTable creates atlas_schema_revisions, if it does not exist,
	// as the atlas CLI does.
	RevisionTable() string
	// TablesQuery selects the names of the database's tables and views
	// (on PostgreSQL, of the first schema of the search_path), sorted,
	// the engine's own excluded.
	TablesQuery() string
}

// Tables returns the names of the tables and views of the database q
// reaches, as e's TablesQuery selects them.
func Tables(ctx context.Context, q sqlx.Querier, e Engine) ([]string, error) {
	rows, err := q.QueryContext(ctx, e.TablesQuery())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
