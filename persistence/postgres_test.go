package persistence_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// postgresEnv names the server the PostgreSQL tests and benchmarks use.
const postgresEnv = "PEON_TEST_POSTGRES_URL"

// postgresURL returns $PEON_TEST_POSTGRES_URL or skips the test.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(postgresEnv)
	if u == "" {
		tb.Skip(postgresEnv + " is not set; set it to a PostgreSQL URL, such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	return u
}

// newSchema creates an empty schema on the server of base, drops it with
// everything in it when the test ends, and returns base with the schema as
// its search_path (pgx passes unknown URL parameters to the server as
// runtime parameters).
func newSchema(tb testing.TB, base string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "peon_test_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, exec(ctx, "CREATE SCHEMA "+schema))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	base := postgresURL(t)
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:            func(t *testing.T) string { return namedSchema(t, base) },
		Durable:           true,
		ValidatesJSON:     true,
		TimePrecision:     time.Microsecond,
		SetVerifyProgress: persistence.SetVerifyProgress,
		ObserveGroups:     persistence.SetGroupObserver,
		FailProjection:    persistence.SetProjectionFault,
		Disrupt:           func(t *testing.T, dsn string) { terminateBackends(t, dsn) },
	})
}

// TestPostgresConcurrentFirstOpens opens one empty schema from several
// goroutines at once: the migration lock lets one of them migrate, each
// file is recorded once, and every store works.
func TestPostgresConcurrentFirstOpens(t *testing.T) {
	t.Parallel()
	testConcurrentFirstOpens(t, newSchema(t, postgresURL(t)))
}

// TestPostgresConcurrentFirstOpensSerializable is
// TestPostgresConcurrentFirstOpens with SERIALIZABLE as the session's
// default isolation: a migration must read atlas_schema_revisions after
// the migration lock is granted, not in a snapshot taken before it.
func TestPostgresConcurrentFirstOpensSerializable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(newSchema(t, postgresURL(t)))
	require.NoError(t, err)
	q := u.Query()
	q.Set("default_transaction_isolation", "serializable")
	u.RawQuery = q.Encode()
	testConcurrentFirstOpens(t, u.String())
}

func testConcurrentFirstOpens(t *testing.T, dsn string) {
	const n = 4
	stores := make([]*persistence.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = persistence.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		t.Cleanup(func() { stores[i].Close() })
	}
	files, err := fs.Glob(migrations.FS, "postgres/*.sql")
	require.NoError(t, err)
	rows, err := stores[0].Client().QueryContext(t.Context(),
		"SELECT count(*) FROM atlas_schema_revisions WHERE error = '' AND applied = total")
	require.NoError(t, err)
	var recorded int
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&recorded))
	require.NoError(t, rows.Close())
	require.Equal(t, len(files), recorded)
	for i, s := range stores {
		recs, err := s.Append(t.Context(), nil, persistencetest.Catalogue()[i])
		require.NoError(t, err)
		require.Equal(t, int64(i+1), recs[0].Sequence)
	}
}
