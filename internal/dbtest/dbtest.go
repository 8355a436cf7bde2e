// Package dbtest gives each test a database of its own through the real
// engines: a fresh SQLite file in the test's temporary directory, or a
// fresh schema of the PostgreSQL server that $PEON_TEST_POSTGRES_URL
// names, dropped with everything in it when the test ends. Tests of
// PostgreSQL skip, saying how to run them, when the variable is not set.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// PostgresEnv names the variable that holds the URL of the PostgreSQL
// database the tests and benchmarks use.
const PostgresEnv = "PEON_TEST_POSTGRES_URL"

// SQLiteFile returns the path of a SQLite database file that does not
// exist yet, peon.db in a directory of tb.TempDir, removed when the test
// ends.
func SQLiteFile(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "peon.db")
}

// PostgresURL returns $PEON_TEST_POSTGRES_URL or skips the test.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(PostgresEnv)
	if u == "" {
		tb.Skip(PostgresEnv + " is not set; set it to a PostgreSQL URL, such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	return u
}

// PostgresSchema creates an empty schema on the server of PostgresURL
// (skipping the test when it is not set), drops it with everything in it
// when the test ends, and returns PostgresURL with the schema as its
// search_path (pgx passes unknown URL parameters to the server as runtime
// parameters).
func PostgresSchema(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "peon_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, exec(ctx, base, "CREATE SCHEMA "+schema))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
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

// NamedPostgresSchema is PostgresSchema with the schema's name also as
// the application_name of the URL's connections, so that
// TerminateBackends finds them. A URL without one leaves the name to
// whoever uses it (the crash tests name each child's sessions).
func NamedPostgresSchema(tb testing.TB) string {
	tb.Helper()
	u, err := url.Parse(PostgresSchema(tb))
	require.NoError(tb, err)
	q := u.Query()
	q.Set("application_name", q.Get("search_path"))
	u.RawQuery = q.Encode()
	return u.String()
}

// TerminateBackends ends, with pg_terminate_backend, the server process
// of every connection made with dsn (a NamedPostgresSchema URL), as an
// administrator or a failover would, and returns how many there were. It
// waits until each has exited.
func TerminateBackends(tb testing.TB, dsn string) int {
	tb.Helper()
	u, err := url.Parse(dsn)
	require.NoError(tb, err)
	app := u.Query().Get("application_name")
	require.NotEmpty(tb, app, "not a NamedPostgresSchema URL: %s", dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresURL(tb))
	require.NoError(tb, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(tb, conn.QueryRow(ctx,
		"SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
		app).Scan(&n))
	return n
}

// exec runs stmt on a connection of its own to the server of base.
func exec(ctx context.Context, base, stmt string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}
