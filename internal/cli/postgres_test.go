package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
)

// TestPostgres moves a demo session from PostgreSQL to SQLite and back:
// each export is byte-identical to the first, each store verifies.
func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := &env{t: t, db: dbtest.NamedPostgresSchema(t), vars: map[string]string{}}
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

	back := &env{t: t, db: dbtest.NamedPostgresSchema(t), vars: map[string]string{}}
	back.ok("import", file)
	require.True(t, strings.HasPrefix(back.ok("verify"), "OK: "))
	require.Equal(t, first, back.ok("export"))
	require.Equal(t, pg.ok("threads", "--all"), back.ok("threads", "--all"))
}
