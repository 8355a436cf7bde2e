package persistence_test

import (
	"database/sql"
	"io/fs"
	"os"
	"path"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/persistence"
)

func TestPendingMigrations(t *testing.T) {
	t.Parallel()

	// requireAllPending checks that pending is every embedded migration of
	// dialect, each with its file's SQL.
	requireAllPending := func(t *testing.T, dialect string, pending []persistence.PendingMigration) {
		t.Helper()
		names, err := fs.Glob(migrations.FS, dialect+"/*.sql")
		require.NoError(t, err)
		require.Len(t, pending, len(names))
		for i, p := range pending {
			want, err := fs.ReadFile(migrations.FS, names[i])
			require.NoError(t, err)
			require.Equal(t, path.Base(names[i]), p.Name)
			require.Equal(t, p.Name, p.Version+"_"+p.Description+".sql")
			require.Equal(t, string(want), p.SQL)
		}
	}

	t.Run("MissingFileIsAllPendingAndNotCreated", func(t *testing.T) {
		t.Parallel()
		file := dbtest.SQLiteFile(t)
		pending, err := persistence.PendingMigrations(t.Context(), file)
		require.NoError(t, err)
		requireAllPending(t, "sqlite", pending)
		require.NoFileExists(t, file)
	})

	t.Run("NoneAfterMigrate", func(t *testing.T) {
		t.Parallel()
		file := dbtest.SQLiteFile(t)
		_, err := persistence.Migrate(t.Context(), file)
		require.NoError(t, err)
		before, err := os.ReadFile(file)
		require.NoError(t, err)
		pending, err := persistence.PendingMigrations(t.Context(), file)
		require.NoError(t, err)
		require.Empty(t, pending)
		after, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Equal(t, before, after, "the database file is byte-identical")
	})

	t.Run("RefusesWhatMigrateRefuses", func(t *testing.T) {
		t.Parallel()
		file := dbtest.SQLiteFile(t)
		_, err := persistence.Migrate(t.Context(), file)
		require.NoError(t, err)
		db, err := sql.Open("sqlite", file)
		require.NoError(t, err)
		_, err = db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, hash, operator_version) VALUES ('29990101000000', 'future', 2, 1, 1, '2999-01-01 00:00:00+00:00', 1, 'x', 'peon')")
		require.NoError(t, err)
		require.NoError(t, db.Close())
		_, migrateErr := persistence.Migrate(t.Context(), file)
		require.ErrorIs(t, migrateErr, persistence.ErrMigration)
		_, err = persistence.PendingMigrations(t.Context(), file)
		require.ErrorIs(t, err, persistence.ErrMigration)
		require.Contains(t, migrateErr.Error(), "migration refused: the database records migration 29990101000000")
		require.Equal(t, "pending migrations of "+file+": migration refused: the database records migration 29990101000000, which this build does not have: it was written by a newer peon; upgrade peon to open it", err.Error())
	})

	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		dsn := dbtest.PostgresSchema(t)
		pending, err := persistence.PendingMigrations(t.Context(), dsn)
		require.NoError(t, err)
		requireAllPending(t, "postgres", pending)
		st, err := persistence.Migrations(t.Context(), dsn)
		require.NoError(t, err)
		for _, s := range st {
			require.False(t, s.Applied, "nothing was applied")
		}
		_, err = persistence.Migrate(t.Context(), dsn)
		require.NoError(t, err)
		pending, err = persistence.PendingMigrations(t.Context(), dsn)
		require.NoError(t, err)
		require.Empty(t, pending)
	})
}
