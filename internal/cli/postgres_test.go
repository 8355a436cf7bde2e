package cli

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
)

// postgresDB returns the URL of a fresh schema of the PostgreSQL database
// named by $PEON_TEST_POSTGRES_URL, dropped when the test ends; it skips
// the test when the variable is not set. The schema's name is also the
// application_name of the URL's connections (see terminateBackends).
func postgresDB(t testing.TB) string {
	t.Helper()
	url := os.Getenv("PEON_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("PEON_TEST_POSTGRES_URL is not set")
	}
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var b [6]byte
	rand.Read(b[:])
	schema := "peon_cli_" + hex.EncodeToString(b[:])
	_, err = db.ExecContext(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema + "&application_name=" + schema
}

// TestPostgres moves a demo session from PostgreSQL to SQLite and back:
// each export is byte-identical to the first, each store verifies.
func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := &env{t: t, db: postgresDB(t), vars: map[string]string{}}
	require.Equal(t, ExitPending, pg.run("migrate", "status").code)
	dry := pg.ok("migrate", "--dry-run")
	require.Contains(t, dry, `CREATE TABLE "events"`)
	require.Equal(t, ExitPending, pg.run("migrate", "status").code, "--dry-run applied nothing")
	pg.ok("migrate")
	require.Contains(t, pg.ok("migrate", "status"), " applied ")
	pg.ok("demo", "--seed", "3", "--threads", "3", "--turns", "4")
	require.True(t, strings.HasPrefix(pg.ok("verify"), "OK: "))
	first := pg.ok("export")

	file := filepath.Join(t.TempDir(), "e.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(first), 0o600))
	lite := newEnv(t)
	lite.ok("import", file)
	require.Equal(t, first, lite.ok("export"))

	back := &env{t: t, db: postgresDB(t), vars: map[string]string{}}
	back.ok("import", file)
	require.True(t, strings.HasPrefix(back.ok("verify"), "OK: "))
	require.Equal(t, first, back.ok("export"))
	require.Equal(t, pg.ok("threads", "--all"), back.ok("threads", "--all"))
}

// terminateBackends ends, with pg_terminate_backend, the server process of
// every connection made with dsn, a URL of postgresDB, and waits until
// each has exited.
func terminateBackends(t *testing.T, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	app := u.Query().Get("application_name")
	require.NotEmpty(t, app)
	db, err := sql.Open("pgx", os.Getenv("PEON_TEST_POSTGRES_URL"))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(t.Context(),
		"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app)
	require.NoError(t, err)
}
