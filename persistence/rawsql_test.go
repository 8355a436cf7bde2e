package persistence_test

import (
	"database/sql"
	"strings"
	"testing"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/migrations"
)

// rawDB opens a SQLite file directly, beside the store, for what the
// store's API does not do: counting, planting bad rows.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// queryInt runs a query returning one integer on the SQLite file path or
// the PostgreSQL URL dsn.
func queryInt(t *testing.T, dsn, query string, args ...any) int {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") {
		db, err = sql.Open("pgx", dsn)
	} else {
		db, err = sql.Open("sqlite", dsn+"?_pragma=busy_timeout(10000)")
	}
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(query, args...).Scan(&n), query)
	return n
}

// migrationDirWith returns the embedded SQLite migration directory with
// each file passed through edit; a nil result leaves the file out.
func migrationDirWith(t *testing.T, edit func(name string, b []byte) []byte) *atlasmigrate.MemDir {
	t.Helper()
	entries, err := migrations.FS.ReadDir("sqlite")
	require.NoError(t, err)
	dir := &atlasmigrate.MemDir{}
	for _, e := range entries {
		b, err := migrations.FS.ReadFile("sqlite/" + e.Name())
		require.NoError(t, err)
		if b = edit(e.Name(), b); b != nil {
			require.NoError(t, dir.WriteFile(e.Name(), b))
		}
	}
	return dir
}

// dialectCase is an engine the process tests run on: SQLite always,
// PostgreSQL when PEON_TEST_POSTGRES_URL is set.
type dialectCase struct {
	dialect string
	newDSN  func(t *testing.T) string // a fresh, empty database
}

// forEachDialect runs fn as parallel subtests SQLite and PostgreSQL.
func forEachDialect(t *testing.T, fn func(*testing.T, dialectCase)) {
	cases := map[string]dialectCase{
		"SQLite":     {"sqlite", func(t *testing.T) string { return dbtest.SQLiteFile(t) }},
		"PostgreSQL": {"postgres", func(t *testing.T) string { return dbtest.PostgresSchema(t) }},
	}
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, cases[name])
		})
	}
}
