package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/engine/postgres"
	"github.com/peonhq/peon/internal/engine/sqlite"
)

// notStore returns the *NotStoreError of a database that holds other
// tables and records no migration of files, or only migrations of another
// schema; nil for a store, a newer one, or an empty database.
func notStore(ctx context.Context, db *sql.DB, d dialect, files []atlasmigrate.File, revs []MigrationStatus) error {
	tables, err := listTables(ctx, db, d)
	if err != nil {
		return fmt.Errorf("read the schema: %w", err)
	}
	st := schemaState{tables: tables, applied: map[string]bool{}, pending: files}
	for _, r := range revs {
		if slices.ContainsFunc(files, func(f atlasmigrate.File) bool { return f.Version() == r.Version }) {
			st.applied[r.Version] = true
		}
	}
	if len(st.applied) == 0 {
		for _, r := range revs {
			st.foreign = append(st.foreign, r.Version)
		}
	}
	return st.refuse(false)
}

// dialectOf returns the engine of a parsed DSN: the one place that reads
// which engine a Target names.
func dialectOf(t Target) dialect {
	if t.Dialect == "postgres" {
		return postgres.Engine{}
	}
	return sqlite.Engine{Memory: t.Memory}
}

// openExisting opens the database of t read-only, as Options.ReadOnly
// does, without creating, migrating or changing it. It returns a nil
// *sql.DB when there is nothing to read: a SQLite file that does not
// exist, or a fresh in-memory one.
func openExisting(ctx context.Context, t Target) (*sql.DB, error) {
	return dialectOf(t).OpenExisting(ctx, t.DSN)
}

// readStatusRevisions reads atlas_schema_revisions, if the table exists,
// as statuses. A row with an error or fewer statements applied than it
// has is not applied.
func readStatusRevisions(ctx context.Context, db *sql.DB, d dialect) ([]MigrationStatus, error) {
	tables, err := listTables(ctx, db, d)
	if err != nil || !slices.Contains(tables, revisionTableName) {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, d.Bind(
		"SELECT version, description, executed_at, applied, total, COALESCE(error, '') FROM atlas_schema_revisions WHERE version <> ? ORDER BY version"),
		cloudIdentifier)
	if err != nil {
		return nil, fmt.Errorf("read atlas_schema_revisions: %w", err)
	}
	defer rows.Close()
	var out []MigrationStatus
	for rows.Next() {
		var (
			s              MigrationStatus
			executedAt     any
			applied, total int
			errText        string
		)
		if err := rows.Scan(&s.Version, &s.Description, &executedAt, &applied, &total, &errText); err != nil {
			return nil, fmt.Errorf("read atlas_schema_revisions: %w", err)
		}
		s.Applied = errText == "" && applied >= total
		s.ExecutedAt = parseExecutedAt(executedAt)
		out = append(out, s)
	}
	return out, rows.Err()
}

// parseExecutedAt reads executed_at as the driver returns it: a time, or
// on SQLite the atlas CLI's text layout. It is zero when unreadable.
func parseExecutedAt(v any) time.Time {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case []byte:
		return parseExecutedAt(string(v))
	case string:
		for _, layout := range []string{executedAtLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}
