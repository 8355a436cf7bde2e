package migrategen

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// atlasEnv names the variable that points the test at an atlas binary
// when it is not on $PATH.
const atlasEnv = "PEON_ATLAS"

// TestAtlasCLI runs atlas.hcl's envs with a real atlas binary, the
// community build or the official one: the committed migration directories
// are synced with the desired state in migrations/schema, and a desired
// state that differs is seen. CI has no binary and skips it.
func TestAtlasCLI(t *testing.T) {
	bin := os.Getenv(atlasEnv)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("atlas"); err != nil {
			t.Skipf("no atlas binary: put one on $PATH or set $%s (the community build: `go build` in cmd/atlas of a github.com/ariga/atlas checkout; the official one: atlasgo.io)", atlasEnv)
		}
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	atlas := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "atlas %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}

	type dialectCase struct {
		name string
		dev  string
	}
	cases := []dialectCase{{name: "sqlite", dev: "sqlite://dev?mode=memory&_fk=1"}}
	if url := os.Getenv(DevPostgresEnv); url != "" {
		cases = append(cases, dialectCase{name: "postgres", dev: url})
	} else {
		t.Logf("postgres: skipped, $%s is not set", DevPostgresEnv)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reset := func() {
				if c.name == "postgres" {
					// Atlas wants an empty dev database; Diff and Lint leave tables in it.
					db, _, err := devDB(context.Background(), c.name)
					require.NoError(t, err)
					require.NoError(t, db.Close())
				}
			}
			reset()
			out := atlas(t, "migrate", "diff", "--env", c.name)
			require.Contains(t, out, "The migration directory is synced with the desired state")

			reset()
			out = atlas(t, "schema", "diff",
				"--from", "file://migrations/"+c.name,
				"--to", "file://migrations/schema/"+c.name+".sql",
				"--dev-url", c.dev)
			require.Contains(t, out, "Schemas are synced, no changes to be made")

			reset()
			out = atlas(t, "migrate", "lint", "--env", c.name, "--latest", "1")
			require.Contains(t, out, "no diagnostics found")

			// A desired state one column ahead of the directory is a change.
			b, err := os.ReadFile(DDLPath(filepath.Join(root, "migrations"), c.name))
			require.NoError(t, err)
			ahead := strings.Replace(string(b), "CREATE TABLE", "CREATE TABLE drift_probe (id integer NOT NULL);\nCREATE TABLE", 1)
			probe := filepath.Join(t.TempDir(), c.name+".sql")
			require.NoError(t, os.WriteFile(probe, []byte(ahead), 0o644))
			reset()
			out = atlas(t, "schema", "diff",
				"--from", "file://migrations/"+c.name,
				"--to", "file://"+probe,
				"--dev-url", c.dev)
			require.Contains(t, out, "drift_probe")
			reset()
		})
	}
}
