package persistence_test

import (
	"crypto/sha256"
	"database/sql"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// fileState is what "byte-identical, no -wal or -shm" compares: the
// file's hash and which of its side files exist.
type fileState struct {
	sum      [32]byte
	wal, shm bool
}

func stateOf(t *testing.T, p string) fileState {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	return fileState{sum: sha256.Sum256(b), wal: exists(p + "-wal"), shm: exists(p + "-shm")}
}

// foreignSQLite writes a SQLite file of another application, in rollback
// journal mode (or WAL), with the tables of stmts, and closes it.
func foreignSQLite(t *testing.T, wal bool, stmts ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", p)
	require.NoError(t, err)
	defer db.Close()
	if wal {
		_, err = db.Exec("PRAGMA journal_mode=WAL")
		require.NoError(t, err)
	}
	for _, s := range stmts {
		_, err = db.Exec(s)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
	return p
}

// withExtraMigration returns the embedded migration directory of dialect
// with one more migration after it, as a newer build would have: a store
// migrated by the embedded one then lacks a migration of it.
func withExtraMigration(t *testing.T, dialect string) atlasmigrate.Dir {
	t.Helper()
	dir := &atlasmigrate.MemDir{}
	files, err := fs.Glob(migrations.FS, dialect+"/*.sql")
	require.NoError(t, err)
	for _, f := range files {
		b, err := fs.ReadFile(migrations.FS, f)
		require.NoError(t, err)
		require.NoError(t, dir.WriteFile(path.Base(f), b))
	}
	require.NoError(t, dir.WriteFile("29990101000000_extra.sql", []byte("CREATE TABLE extra_thing (x integer);\n")))
	sum, err := dir.Checksum()
	require.NoError(t, err)
	require.NoError(t, atlasmigrate.WriteSumFile(dir, sum))
	return dir
}

// TestForeignSQLiteDatabase: a SQLite file of another application is
// refused by Open, read-only or not, and by Migrations, with an
// ErrNotStore that names its tables; the file stays byte for byte as it
// was and gets no -wal or -shm file, in rollback and in WAL mode.
// Options.Adopt adds peon's tables beside the application's, unless one of
// them has the name of one of peon's.
func TestForeignSQLiteDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, wal := range []bool{false, true} {
		name := "Rollback"
		if wal {
			name = "WAL"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := foreignSQLite(t, wal, "CREATE TABLE users (id integer primary key, name text)",
				"INSERT INTO users VALUES (1, 'ada')", "CREATE TABLE events (id integer primary key, what text)")
			before := stateOf(t, p)
			for _, opts := range []*persistence.Options{nil, {ReadOnly: true}, {NoProjections: true}} {
				_, err := persistence.OpenWith(ctx, p, opts)
				require.ErrorIs(t, err, persistence.ErrNotStore)
				var ne *persistence.NotStoreError
				require.ErrorAs(t, err, &ne)
				require.Equal(t, []string{"events", "users"}, ne.Tables)
				require.Equal(t, []string{"events"}, ne.Collide)
				require.ErrorContains(t, err, "not a peon store: it holds the tables events, users and no peon migrations")
				require.Equal(t, before, stateOf(t, p), "options %+v changed the file", opts)
			}
			_, err := persistence.Migrations(ctx, p)
			require.ErrorIs(t, err, persistence.ErrNotStore)
			_, err = persistence.Migrate(ctx, p)
			require.ErrorIs(t, err, persistence.ErrNotStore)
			_, err = persistence.OpenWith(ctx, p, &persistence.Options{Adopt: true})
			require.ErrorIs(t, err, persistence.ErrNotStore)
			require.ErrorContains(t, err, "peon cannot adopt it: its own events would collide with peon's")
			require.Equal(t, before, stateOf(t, p))
		})
	}

	t.Run("Adopt", func(t *testing.T) {
		t.Parallel()
		p := foreignSQLite(t, false, "CREATE TABLE users (id integer primary key, name text)", "INSERT INTO users VALUES (1, 'ada')")
		before := stateOf(t, p)
		_, err := persistence.Open(ctx, p)
		require.ErrorContains(t, err, "not a peon store: it holds the tables users and no peon migrations (another application's database?); open it with Options.Adopt")
		require.Equal(t, before, stateOf(t, p))

		s, err := persistence.OpenWith(ctx, p, &persistence.Options{Adopt: true})
		require.NoError(t, err)
		_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		db, err := sql.Open("sqlite", p)
		require.NoError(t, err)
		var name string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = 1").Scan(&name), "the application's table is kept")
		require.Equal(t, "ada", name)
		require.NoError(t, db.Close())
		// Now a store: it opens without Adopt, read-only too.
		s, err = persistence.OpenWith(ctx, p, &persistence.Options{ReadOnly: true})
		require.NoError(t, err)
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "verify: %v", rep.Problems)
		require.NoError(t, s.Close())
	})

	t.Run("AnotherSchemasAtlasRevisions", func(t *testing.T) {
		t.Parallel()
		p := foreignSQLite(t, false, "CREATE TABLE atlas_schema_revisions (version text primary key, description text, type integer, applied integer, total integer, executed_at datetime, execution_time integer, error text, error_stmt text, hash text, partial_hashes json, operator_version text)",
			"INSERT INTO atlas_schema_revisions VALUES ('20200101000000', 'init', 2, 1, 1, '2020-01-01 00:00:00+00:00', 1, '', '', 'x', NULL, 'atlas')",
			"CREATE TABLE users (id integer primary key)")
		before := stateOf(t, p)
		for _, opts := range []*persistence.Options{nil, {Adopt: true}, {ReadOnly: true}} {
			_, err := persistence.OpenWith(ctx, p, opts)
			require.ErrorIs(t, err, persistence.ErrNotStore)
			require.ErrorContains(t, err, "records the migrations 20200101000000 of another schema")
		}
		require.Equal(t, before, stateOf(t, p))
	})
}

// TestReadOnlyOlderSQLiteStore: a store that lacks a migration of this
// build is refused read-only with ErrMigrationPending and left byte for
// byte as it was, without a -wal or -shm file; opened to write, it is
// migrated.
func TestReadOnlyOlderSQLiteStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p := dbtest.SQLiteFile(t)
	s, err := persistence.Open(ctx, p)
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	before := stateOf(t, p)
	require.False(t, before.wal || before.shm)

	newer := withExtraMigration(t, "sqlite")
	_, err = persistence.OpenWithMigrationDir(ctx, p, &persistence.Options{ReadOnly: true}, newer)
	require.ErrorIs(t, err, persistence.ErrMigrationPending)
	require.ErrorContains(t, err, "the store lacks 1 migration of this build (from 29990101000000 extra); migrate it first (persistence.Migrate, or `peon-store migrate`)")
	require.Equal(t, before, stateOf(t, p))

	s, err = persistence.OpenWithMigrationDir(ctx, p, nil, newer)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s, err = persistence.OpenWithMigrationDir(ctx, p, &persistence.Options{ReadOnly: true}, newer)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestPostgresForeignSchema: a schema holding another application's
// tables is refused naming them, and nothing is created in it (not even
// atlas_schema_revisions); Adopt adds peon's tables beside them. A schema
// that lacks a migration is refused read-only.
func TestPostgresForeignSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := dbtest.PostgresSchema(t)
	raw, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.ExecContext(ctx, "CREATE TABLE orders (id bigint primary key); CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 100")
	require.NoError(t, err)
	tables := func() string {
		rows, err := raw.QueryContext(ctx, "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace ORDER BY 1")
		require.NoError(t, err)
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names = append(names, n)
		}
		return strings.Join(names, ",")
	}
	before := tables()
	for _, opts := range []*persistence.Options{nil, {ReadOnly: true}} {
		_, err = persistence.OpenWith(ctx, dsn, opts)
		require.ErrorIs(t, err, persistence.ErrNotStore)
		require.ErrorContains(t, err, "not a peon store: it holds the tables big_orders, orders and no peon migrations")
		require.Equal(t, before, tables(), "options %+v changed the schema", opts)
	}
	_, err = persistence.Migrations(ctx, dsn)
	require.ErrorIs(t, err, persistence.ErrNotStore)

	s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{Adopt: true})
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = persistence.OpenWithMigrationDir(ctx, dsn, &persistence.Options{ReadOnly: true}, withExtraMigration(t, "postgres"))
	require.ErrorIs(t, err, persistence.ErrMigrationPending)
	s, err = persistence.OpenWith(ctx, dsn, &persistence.Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
