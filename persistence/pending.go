package persistence

import (
	"context"
	"fmt"
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
	files, sums, err := checkedFiles(d, dir)
	if err != nil {
		return nil, err
	}
	db, err := openExisting(ctx, target)
	if err != nil {
		return nil, err
	}
	todo := files
	if db != nil {
		defer db.Close()
		// What Migrate would find, and refuse, before it takes a lock.
		st, err := inspect(ctx, db, d, files, sums)
		if err == nil {
			err = st.refuse(false)
		}
		if err != nil {
			return nil, fmt.Errorf("pending migrations of %s: %w", target.Display, err)
		}
		todo = st.pending
	}
	var pending []PendingMigration
	for _, f := range todo {
		pending = append(pending, PendingMigration{Version: f.Version(), Description: f.Desc(), Name: f.Name(), SQL: string(f.Bytes())})
	}
	return pending, nil
}
