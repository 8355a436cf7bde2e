package persistence_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/persistence"
)

// TestProjectionStatementsArePreparedWhereUsed: opening prepares the
// projectors' statements on SQLite, whose appends run them through the
// statement cache, and not on PostgreSQL, where appends pipeline them
// through pgx and nothing would use them.
func TestProjectionStatementsArePreparedWhereUsed(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		s, err := persistence.OpenDir(t.Context(), t.TempDir())
		require.NoError(t, err)
		defer s.Close()
		require.NotZero(t, persistence.PreparedStatements(s), "SQLite's appends run the projectors' statements prepared")
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		s, err := persistence.Open(t.Context(), dbtest.PostgresSchema(t))
		require.NoError(t, err)
		defer s.Close()
		require.Zero(t, persistence.PreparedStatements(s), "statements prepared on PostgreSQL that no append uses")
	})
}
