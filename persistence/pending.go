package persistence

import (
	"context"
	"fmt"

	atlasmigrate "ariga.io/atlas/sql/migrate"
)

// PendingMigration is a migration that Migrate would apply.
type PendingMigration struct {
	Version     string
	Description string
	Name        string // the file's name in migrations/<dialect>/, such as 20261128130707_init.sql
	SQL         string // the file, whose statements Migrate runs
}

// PendingMigrations returns the migrations that Migrate would apply to the
// database at dsn, in the order it would apply them, with their SQL; none
// when the database is up to date. It migrates, changes and creates
// nothing. It refuses what Migrate refuses (ErrMigration): a migration
// directory whose atlas.sum does not match, and a database that records a
// migration this build does not have, one that failed, or one applied with
// other contents.
func PendingMigrations(ctx context.Context, dsn string) ([]PendingMigration, error) {
	target, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	d := dialectOf(target)
	dir, err := migrationDir(d.name())
	if err != nil {
		return nil, err
	}
	if err := atlasmigrate.Validate(dir); err != nil {
		return nil, fmt.Errorf("%w: the %s migration directory does not match its atlas.sum: %v", ErrMigration, d.name(), err)
	}
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	sums, err := dir.Checksum()
	if err != nil {
		return nil, err
	}
	db, err := openExisting(ctx, target)
	if err != nil {
		return nil, err
	}
	var revs []revision
	if db != nil {
		defer db.Close()
		exists := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'atlas_schema_revisions'"
		if d.name() == "postgres" {
			exists = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'atlas_schema_revisions'"
		}
		n, err := queryInt64(ctx, db, exists)
		if err != nil {
			return nil, fmt.Errorf("pending migrations of %s: %w", target.Display, err)
		}
		if n > 0 {
			if revs, err = readRevisions(ctx, db, d); err != nil {
				return nil, err
			}
		}
	}
	if err := checkRevisions(revs, files, sums); err != nil {
		return nil, fmt.Errorf("pending migrations of %s: %w", target.Display, err)
	}
	applied := make(map[string]bool, len(revs))
	for _, r := range revs {
		applied[r.version] = true
	}
	var pending []PendingMigration
	for _, f := range files {
		if !applied[f.Version()] {
			pending = append(pending, PendingMigration{Version: f.Version(), Description: f.Desc(), Name: f.Name(), SQL: string(f.Bytes())})
		}
	}
	return pending, nil
}
