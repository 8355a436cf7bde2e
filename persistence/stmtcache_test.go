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

// TestStatementMemory: every statement shape of the append path prepared
// on a SQLite connection takes no more memory than shapes.go states, and
// as many statements as it counts.
func TestStatementMemory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	defer s.Close()
	before, err := persistence.StatementMemory(ctx, s)
	require.NoError(t, err)
	persistence.PrepareAllShapes(ctx, s)
	after, err := persistence.StatementMemory(ctx, s)
	require.NoError(t, err)
	t.Logf("%d statements prepared: %d bytes", persistence.PreparedStatements(s), after-before)
	require.Equal(t, 25, persistence.PreparedStatements(s), "10 INSERTs, 14 head reads, the command look-up")
	require.LessOrEqual(t, after-before, persistence.ShapeMemory)
}
