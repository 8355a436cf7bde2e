package persistence_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/persistence"
)

func TestMigrations(t *testing.T) {
	t.Parallel()

	t.Run("MissingFileIsAllPendingAndNotCreated", func(t *testing.T) {
		t.Parallel()
		path := dbtest.SQLiteFile(t)
		st, err := persistence.Migrations(t.Context(), path)
		require.NoError(t, err)
		require.NotEmpty(t, st)
		for _, s := range st {
			require.False(t, s.Applied, s.Version)
			require.True(t, s.ExecutedAt.IsZero())
			require.NotEmpty(t, s.Description)
		}
		require.NoFileExists(t, path)
	})

	t.Run("MigrateAppliesOnceThenStatusShowsApplied", func(t *testing.T) {
		t.Parallel()
		path := dbtest.SQLiteFile(t)
		applied, err := persistence.Migrate(t.Context(), path)
		require.NoError(t, err)
		require.NotEmpty(t, applied)
		st, err := persistence.Migrations(t.Context(), path)
		require.NoError(t, err)
		require.Len(t, st, len(applied))
		for _, s := range st {
			require.True(t, s.Applied, s.Version)
			require.False(t, s.ExecutedAt.IsZero())
		}
		again, err := persistence.Migrate(t.Context(), path)
		require.NoError(t, err)
		require.Empty(t, again)
	})

	t.Run("OpenedStoreIsUpToDate", func(t *testing.T) {
		t.Parallel()
		path := dbtest.SQLiteFile(t)
		s, err := persistence.Open(t.Context(), path)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		st, err := persistence.Migrations(t.Context(), path)
		require.NoError(t, err)
		for _, s := range st {
			require.True(t, s.Applied, s.Version)
		}
	})
}
