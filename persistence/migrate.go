package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sync"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/migrations"
)

// operatorVersion is written to atlas_schema_revisions.operator_version
// for migrations the store applies (the atlas CLI writes its own name).
const operatorVersion = "peon-persistence"

// cloudIdentifier is a row the atlas CLI may keep in its revision table
// that is not a migration.
const cloudIdentifier = ".atlas_cloud_identifier"

// migrationDirs holds the embedded directories, read once.
var migrationDirs sync.Map // dialect name -> *atlasmigrate.MemDir

// migrationDir returns the embedded Atlas directory of a dialect.
func migrationDir(name string) (atlasmigrate.Dir, error) {
	if d, ok := migrationDirs.Load(name); ok {
		return d.(atlasmigrate.Dir), nil
	}
	return loadMigrationDir(migrations.FS, name)
}

func loadMigrationDir(fsys fs.FS, name string) (atlasmigrate.Dir, error) {
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	dir := &atlasmigrate.MemDir{}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(name, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, err
		}
	}
	migrationDirs.Store(name, dir)
	return dir, nil
}

// revision is a row of atlas_schema_revisions, as far as we read it.
type revision struct {
	version, hash, errText string
	applied, total         int
}

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

// migrate applies the pending files of dir to db, each in its own
// transaction that also records it in atlas_schema_revisions as the atlas
// CLI does. It first decides with a read, without a lock, so that opening
// a store that has every migration waits for no writer; only when files
// are pending does it take the migration lock, and what is pending is
// decided again inside each file's transaction, under that lock, so
// concurrent first opens apply each file once. It refuses, changing
// nothing, a dir whose atlas.sum does not match, a database that records
// migrations dir does not have, and one that is not a peon store (see
// schemaState.refuse).
func migrate(ctx context.Context, db *sql.DB, d dialect, dir atlasmigrate.Dir, mo migrateOpts) (applied int, err error) {
	files, sums, err := checkedFiles(d, dir)
	if err != nil {
		return 0, err
	}
	st, err := inspect(ctx, db, d, files, sums)
	if err != nil {
		return 0, err
	}
	if err := st.refuse(mo.adopt); err != nil {
		return 0, err
	}
	if mo.readOnly {
		switch {
		case st.empty():
			return 0, &NotStoreError{Tables: st.tables}
		case len(st.pending) > 0:
			return 0, fmt.Errorf("%w: the store lacks %d migration%s of this build (from %s %s); migrate it first (persistence.Migrate, or `peon-store migrate`)",
				ErrMigrationPending, len(st.pending), plural(len(st.pending)), st.pending[0].Version(), st.pending[0].Desc())
		}
		return 0, nil
	}
	if mo.beforeWrite != nil {
		if err := mo.beforeWrite(ctx); err != nil {
			return 0, err
		}
	}
	if len(st.pending) == 0 {
		return 0, nil
	}
	for {
		done, err := migrateNext(ctx, db, d, files, sums, mo)
		if err != nil || done {
			return applied, err
		}
		applied++
	}
}

// checkedFiles returns the files of dir and their sums, once dir is found
// to match its atlas.sum (ErrMigration when it does not).
func checkedFiles(d dialect, dir atlasmigrate.Dir) ([]atlasmigrate.File, atlasmigrate.HashFile, error) {
	if err := atlasmigrate.Validate(dir); err != nil {
		return nil, nil, fmt.Errorf("%w: the %s migration directory does not match its atlas.sum: %v", ErrMigration, d.Name(), err)
	}
	files, err := dir.Files()
	if err != nil {
		return nil, nil, err
	}
	sums, err := dir.Checksum()
	if err != nil {
		return nil, nil, err
	}
	return files, sums, nil
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// migrateNext applies the first pending file, in one transaction, under
// the migration lock; it reports done when there is none.
func migrateNext(ctx context.Context, db *sql.DB, d dialect, files []atlasmigrate.File, sums atlasmigrate.HashFile, mo migrateOpts) (done bool, err error) {
	// READ COMMITTED on PostgreSQL, whatever the default isolation: the
	// revisions are read after the lock, and must see what a migration that
	// held it before committed.
	tx, err := db.BeginTx(ctx, d.AppendTxOptions())
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := d.LockMigrate(ctx, tx); err != nil {
		return false, fmt.Errorf("migrate: lock: %w", err)
	}
	st, err := inspect(ctx, tx, d, files, sums)
	if err != nil {
		return false, err
	}
	if err := st.refuse(mo.adopt); err != nil {
		return false, err
	}
	if len(st.pending) == 0 {
		return true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, d.RevisionTable()); err != nil {
		return false, fmt.Errorf("migrate: create atlas_schema_revisions: %w", err)
	}
	f := st.pending[0]
	stmts, err := f.Stmts()
	if err != nil {
		return false, fmt.Errorf("migrate: parse %s: %w", f.Name(), err)
	}
	start := time.Now()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("migrate: %s: %w\n\tin: %s", f.Name(), err, stmt)
		}
	}
	hash, err := sums.SumByName(f.Name())
	if err != nil {
		return false, fmt.Errorf("migrate: %s: %w", f.Name(), err)
	}
	if err := writeRevision(ctx, tx, d, f, hash, len(stmts), start); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate: commit %s: %w", f.Name(), err)
	}
	mo.log.Info("peon: migration applied", "version", f.Version(), "description", f.Desc(), "duration", time.Since(start))
	return false, nil
}

func readRevisions(ctx context.Context, q querier, d dialect) ([]revision, error) {
	rows, err := q.QueryContext(ctx, d.Bind(
		"SELECT version, hash, applied, total, COALESCE(error, '') FROM atlas_schema_revisions WHERE version <> ? ORDER BY version"),
		cloudIdentifier)
	if err != nil {
		return nil, fmt.Errorf("migrate: read atlas_schema_revisions: %w", err)
	}
	defer rows.Close()
	var revs []revision
	for rows.Next() {
		var r revision
		if err := rows.Scan(&r.version, &r.hash, &r.applied, &r.total, &r.errText); err != nil {
			return nil, fmt.Errorf("migrate: read atlas_schema_revisions: %w", err)
		}
		revs = append(revs, r)
	}
	return revs, rows.Err()
}

// executedAtLayout is how the atlas CLI stores executed_at on SQLite, as
// text; a time.Time in another layout reads back as year 1 in the CLI.
const executedAtLayout = "2006-01-02 15:04:05.999999999-07:00"

// writeRevision records an applied file exactly as the atlas CLI does
// after a successful run: type 2 (executed), applied = total, no error,
// no partial hashes, execution_time in nanoseconds.
func writeRevision(ctx context.Context, q querier, d dialect, f atlasmigrate.File, hash string, stmts int, start time.Time) error {
	var executedAt any = start.UTC()
	if d.Name() == "sqlite" {
		executedAt = start.UTC().Format(executedAtLayout)
	}
	_, err := q.ExecContext(ctx, d.Bind(
		"INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version) "+
			"VALUES (?, ?, ?, ?, ?, ?, ?, '', '', ?, NULL, ?)"),
		f.Version(), f.Desc(), int(atlasmigrate.RevisionTypeExecute), stmts, stmts, executedAt,
		time.Since(start).Nanoseconds(), hash, operatorVersion)
	if err != nil {
		return fmt.Errorf("migrate: record %s in atlas_schema_revisions: %w", f.Name(), err)
	}
	return nil
}
