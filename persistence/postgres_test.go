package persistence_test

import (
	"io/fs"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	dbtest.PostgresURL(t) // skips the suite without a server
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:            func(t *testing.T) string { return dbtest.NamedPostgresSchema(t) },
		Durable:           true,
		ValidatesJSON:     true,
		TimePrecision:     time.Microsecond,
		SetVerifyProgress: persistence.SetVerifyProgress,
		ObserveGroups:     persistence.SetGroupObserver,
		FailProjection:    persistence.SetProjectionFault,
		Disrupt:           func(t *testing.T, dsn string) { dbtest.TerminateBackends(t, dsn) },
	})
}

// TestPostgresConcurrentFirstOpens opens one empty schema from several
// goroutines at once: the migration lock lets one of them migrate, each
// file is recorded once, and every store works.
func TestPostgresConcurrentFirstOpens(t *testing.T) {
	t.Parallel()
	testConcurrentFirstOpens(t, dbtest.PostgresSchema(t))
}

// TestPostgresConcurrentFirstOpensSerializable is
// TestPostgresConcurrentFirstOpens with SERIALIZABLE as the session's
// default isolation: a migration must read atlas_schema_revisions after
// the migration lock is granted, not in a snapshot taken before it.
func TestPostgresConcurrentFirstOpensSerializable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.PostgresSchema(t))
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
