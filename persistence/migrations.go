package persistence

import (
	"context"
	"fmt"
	"slices"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/schemamigrate"
)

// Migrations reports, for each migration of this build's embedded
// directory, whether the database at dsn has applied it, without opening
// the store, migrating or creating anything: a SQLite file that does not
// exist has every migration pending. Migrations the database records but
// this build does not know (a newer peon wrote them) are listed after the
// known ones, applied, with the description the database holds.
func Migrations(ctx context.Context, dsn string) ([]MigrationStatus, error) {
	target, d, dir, err := embeddedFor(dsn)
	if err != nil {
		return nil, err
	}
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	statuses := make([]MigrationStatus, len(files))
	for i, f := range files {
		statuses[i] = MigrationStatus{Version: f.Version(), Description: f.Desc()}
	}
	db, err := openExisting(ctx, target)
	if err != nil || db == nil {
		return statuses, err
	}
	defer db.Close()
	revs, err := schemamigrate.ReadRevisions(ctx, db, d)
	if err != nil {
		return nil, fmt.Errorf("migration status of %s: %w", target.Display, err)
	}
	if err := notStore(ctx, db, d, files, revs); err != nil {
		return nil, fmt.Errorf("migration status of %s: %w", target.Display, err)
	}
	for _, r := range revs {
		i := slices.IndexFunc(statuses, func(s MigrationStatus) bool { return s.Version == r.Version })
		if i < 0 {
			statuses = append(statuses, MigrationStatus{Version: r.Version, Description: r.Description, Applied: r.OK(), ExecutedAt: r.ExecutedAt})
			continue
		}
		statuses[i].Applied, statuses[i].ExecutedAt = r.OK(), r.ExecutedAt
	}
	return statuses, nil
}

// Migrate applies the pending migrations of this build to the database at
// dsn, as opening a store does, and returns the ones it applied (none when
// the database was up to date). It refuses what opening refuses.
func Migrate(ctx context.Context, dsn string) ([]MigrationStatus, error) {
	before, err := Migrations(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s, err := OpenWith(ctx, dsn, &Options{NoProjections: true})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	if s.d.Features().Private {
		return before, nil // a fresh in-memory database applied everything
	}
	after, err := Migrations(ctx, dsn)
	if err != nil {
		return nil, err
	}
	var applied []MigrationStatus
	for _, a := range after {
		i := slices.IndexFunc(before, func(b MigrationStatus) bool { return b.Version == a.Version })
		if a.Applied && (i < 0 || !before[i].Applied) {
			applied = append(applied, a)
		}
	}
	return applied, nil
}

// MigrationStatus describes one migration of the embedded directory.
type MigrationStatus struct {
	Version     string
	Description string
	Applied     bool
	ExecutedAt  time.Time // zero when pending
}

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
	target, d, dir, err := embeddedFor(dsn)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(d, dir, migrateOpts{})
	if err != nil {
		return nil, err
	}
	db, err := openExisting(ctx, target)
	if err != nil {
		return nil, err
	}
	todo := r.Files()
	if db != nil {
		defer db.Close()
		// What Migrate would find, and refuse, before it takes a lock.
		st, err := r.Inspect(ctx, db)
		if err == nil {
			err = refuseNotStore(st, false)
		}
		if err != nil {
			return nil, fmt.Errorf("pending migrations of %s: %w", target.Display, err)
		}
		todo = st.Pending
	}
	var pending []PendingMigration
	for _, f := range todo {
		pending = append(pending, PendingMigration{Version: f.Version(), Description: f.Desc(), Name: f.Name(), SQL: string(f.Bytes())})
	}
	return pending, nil
}

// embeddedFor parses dsn and returns what it names, its engine and the
// engine's embedded migration directory.
func embeddedFor(dsn string) (Target, dialect, atlasmigrate.Dir, error) {
	target, err := ParseDSN(dsn)
	if err != nil {
		return Target{}, nil, nil, err
	}
	d := dialectOf(target)
	dir, err := embeddedDir(d)
	return target, d, dir, err
}
