package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/schemamigrate"
)

// migrateOpts say how migrate treats a database.
type migrateOpts struct {
	// readOnly refuses, instead of migrating, a database that lacks
	// migrations, and an empty one.
	readOnly bool
	// adopt takes a database that holds other tables and no peon
	// migrations (see Options.Adopt).
	adopt bool
	// beforeWrite, when set, runs once the database was found to be one
	// the store may write to, before any migration (SQLite: switch to WAL).
	beforeWrite func(ctx context.Context) error
	// log gets a line for each file applied.
	log *slog.Logger
}

// migrate applies the pending files of dir to db (see
// schemamigrate.Runner.Apply). It first decides with a read, without a
// lock, so that opening a store that has every migration waits for no
// writer; only when files are pending does it apply them, under the
// migration lock. It refuses, changing nothing, a dir whose atlas.sum
// does not match, a database that records migrations dir does not have,
// and one that is not a peon store (see refuseNotStore).
func migrate(ctx context.Context, db *sql.DB, d dialect, dir atlasmigrate.Dir, mo migrateOpts) (applied int, err error) {
	r, err := newRunner(d, dir, mo)
	if err != nil {
		return 0, err
	}
	st, err := r.Inspect(ctx, db)
	if err != nil {
		return 0, err
	}
	if err := refuseNotStore(st, mo.adopt); err != nil {
		return 0, err
	}
	if mo.readOnly {
		switch {
		case emptyDB(st):
			return 0, &NotStoreError{Tables: st.Tables}
		case len(st.Pending) > 0:
			return 0, fmt.Errorf("%w: the store lacks %d migration%s of this build (from %s %s); migrate it first (persistence.Migrate, or `peon-store migrate`)",
				ErrMigrationPending, len(st.Pending), plural(len(st.Pending)), st.Pending[0].Version(), st.Pending[0].Desc())
		}
		return 0, nil
	}
	if mo.beforeWrite != nil {
		if err := mo.beforeWrite(ctx); err != nil {
			return 0, err
		}
	}
	if len(st.Pending) == 0 {
		return 0, nil
	}
	if p, ok := d.(newPreparer); ok && emptyDB(st) {
		if err := p.PrepareNew(ctx, db); err != nil {
			return 0, fmt.Errorf("prepare the new database: %w", err)
		}
	}
	return r.Apply(ctx, db)
}

// newPreparer is an engine that readies an empty database before its
// first migration (SQLite turns incremental vacuum on).
type newPreparer interface {
	PrepareNew(ctx context.Context, db *sql.DB) error
}

// newRunner returns the migration runner of dir on d: its refusals are
// ErrMigration, a database that is not a peon store is refused under the
// migration lock too, and mo.log gets a line for each file applied.
func newRunner(d dialect, dir atlasmigrate.Dir, mo migrateOpts) (*schemamigrate.Runner, error) {
	opts := &schemamigrate.Options{
		Name:     d.Name(),
		TextTime: d.Features().RevisionTimesAsText,
		Refused:  ErrMigration,
		Check:    func(st schemamigrate.State) error { return refuseNotStore(st, mo.adopt) },
	}
	if mo.log != nil {
		opts.Applied = func(version, description string, took time.Duration) {
			mo.log.Info("peon: migration applied", "version", version, "description", description, "duration", took)
		}
	}
	return schemamigrate.New(d, dir, opts)
}

// embeddedDir returns the embedded migration directory of d.
func embeddedDir(d dialect) (atlasmigrate.Dir, error) { return schemamigrate.EmbeddedDir(d.Name()) }

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
