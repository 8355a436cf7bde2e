package persistence_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// requireAmcheck installs the amcheck extension in the test database
// unless it is there already, or skips the test when the server does not
// have it. It stays installed: every Verify on this database then runs it.
func requireAmcheck(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbtest.PostgresURL(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var available bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'amcheck')").Scan(&available))
	if !available {
		t.Skip("the server has no amcheck extension (PostgreSQL's contrib package)")
	}
	_, err = conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		err = nil // another test created it at the same moment
	}
	require.NoError(t, err)
}

// TestPostgresVerifyRunsAmcheck: with amcheck in the database, Verify
// checks every B-tree index of the store's tables (bt_index_check with
// heapallindexed) and their pages (verify_heapam), and reports an index
// that disagrees with its table, which a replay and the comparison with a
// rebuild never see. The index is made to disagree without touching the
// server's files: it is built on an IMMUTABLE function that then changes
// what it returns.
func TestPostgresVerifyRunsAmcheck(t *testing.T) {
	t.Parallel()
	requireAmcheck(t)
	ctx := t.Context()
	dsn := dbtest.PostgresSchema(t)
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Deltas("t1", 2000)...)
	require.NoError(t, err)

	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.Equal(t, "amcheck", rep.Integrity)
	require.Empty(t, rep.IntegrityNote)
	require.True(t, rep.OK(), "verify: %v", rep.Problems)

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	schema := u.Query().Get("search_path")
	for _, q := range []string{
		"CREATE FUNCTION lying_key(text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT $1 $$",
		"CREATE INDEX lying_idx ON events (lying_key(stream_id))",
		"CREATE OR REPLACE FUNCTION lying_key(text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT 'x' || $1 $$",
	} {
		_, err := s.Client().ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	rep, err = s.Verify(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1, "%v", rep.Problems)
	p := rep.Problems[0]
	require.Equal(t, persistence.ProblemIntegrity, p.Kind)
	require.Equal(t, "events", p.Table)
	require.Equal(t, schema+".lying_idx", p.Key)
	require.Contains(t, p.Detail, "lacks matching index tuple")
	t.Logf("%s", p)
}

// BenchmarkPostgresVerify verifies a store of benchN events (the store of
// BenchmarkVerify) with amcheck installed, and runs its integrity check
// alone, and reports events/s of each.
func BenchmarkPostgresVerify(b *testing.B) {
	requireAmcheck(b)
	ctx := context.Background()
	n := benchN()
	dsn := dbtest.PostgresSchema(b)
	s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
	require.NoError(b, err)
	evs := paddedSessionMix(n, strings.Repeat("x", 192))
	for len(evs) > 0 {
		k := min(len(evs), 10_000)
		_, err := s.Append(ctx, nil, evs[:k]...)
		require.NoError(b, err)
		evs = evs[k:]
	}
	require.NoError(b, s.Close())
	s, err = persistence.Open(ctx, dsn)
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			r, err := s.Verify(ctx)
			require.NoError(b, err)
			require.True(b, r.OK(), "%v", r.Problems)
			require.Equal(b, "amcheck", r.Integrity)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("IntegrityCheck", func(b *testing.B) {
		for b.Loop() {
			r, err := persistence.CheckIntegrity(ctx, s)
			require.NoError(b, err)
			require.True(b, r.OK(), "%v", r.Problems)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
