package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/engine/postgres"
	"github.com/peonhq/peon/internal/engine/sqlite"
	"github.com/peonhq/peon/internal/schemamigrate"
)

// notStore returns the *NotStoreError of a database that holds other
// tables and records no migration of files, or only migrations of another
// schema; nil for a store, a newer one, or an empty database.
func notStore(ctx context.Context, db *sql.DB, d dialect, files []atlasmigrate.File, revs []schemamigrate.Revision) error {
	tables, err := schemamigrate.Tables(ctx, db, d)
	if err != nil {
		return fmt.Errorf("read the schema: %w", err)
	}
	st := schemamigrate.State{Tables: tables, Applied: map[string]bool{}, Pending: files}
	for _, r := range revs {
		if slices.ContainsFunc(files, func(f atlasmigrate.File) bool { return f.Version() == r.Version }) {
			st.Applied[r.Version] = true
		}
	}
	if len(st.Applied) == 0 {
		for _, r := range revs {
			st.Foreign = append(st.Foreign, r.Version)
		}
	}
	return refuseNotStore(st, false)
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
