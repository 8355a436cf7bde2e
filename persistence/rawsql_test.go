package persistence_test

import (
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
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

// queryInt runs a query returning one integer on the SQLite file path.
func queryInt(t *testing.T, path, query string, args ...any) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(query, args...).Scan(&n), query)
	return n
}
