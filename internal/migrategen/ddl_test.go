package migrategen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoMigrations is the committed migrations directory, seen from this
// package's directory.
const repoMigrations = "../../migrations"

func TestDDL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CommittedFilesInStep", func(t *testing.T) {
		t.Parallel()
		for _, d := range Dialects {
			require.NoError(t, CheckDDL(ctx, d, repoMigrations), "%s: run `go -C tools tool task schema:ddl`", d)
		}
	})

	t.Run("EveryTable", func(t *testing.T) {
		t.Parallel()
		for _, d := range Dialects {
			ddl, err := DDL(ctx, d)
			require.NoError(t, err)
			for _, table := range []string{"events", "projection_state", "projection_threads", "settings"} {
				require.Contains(t, string(ddl), "-- Create \""+table+"\" table", d)
			}
			require.NotContains(t, string(ddl), "atlas:pos", d)
		}
	})

	t.Run("StaleFileFails", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		for _, d := range Dialects {
			changed, err := WriteDDL(ctx, d, root)
			require.NoError(t, err)
			require.True(t, changed)
			require.NoError(t, CheckDDL(ctx, d, root))

			path := DDLPath(root, d)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			edited := strings.Replace(string(b), "\"settings\" table", "\"settings\" table\n-- edited by hand", 1)
			require.NotEqual(t, string(b), edited)
			require.NoError(t, os.WriteFile(path, []byte(edited), 0o644))

			err = CheckDDL(ctx, d, root)
			require.ErrorContains(t, err, path+" is not what ent/schema gives")
			require.ErrorContains(t, err, "task schema:ddl")

			changed, err = WriteDDL(ctx, d, root)
			require.NoError(t, err)
			require.True(t, changed, "ddl rewrites the stale file")
			require.NoError(t, CheckDDL(ctx, d, root))
		}
	})

	t.Run("MissingFileFails", func(t *testing.T) {
		t.Parallel()
		err := CheckDDL(ctx, "sqlite", t.TempDir())
		require.ErrorIs(t, err, os.ErrNotExist)
		require.ErrorContains(t, err, "task schema:ddl")
	})

	t.Run("UnknownDialect", func(t *testing.T) {
		t.Parallel()
		_, err := DDL(ctx, "mysql")
		require.ErrorContains(t, err, `unknown dialect "mysql"`)
	})

	t.Run("OutsideMigrationDirectories", func(t *testing.T) {
		t.Parallel()
		for _, d := range Dialects {
			rel, err := filepath.Rel(filepath.Join(repoMigrations, d), DDLPath(repoMigrations, d))
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(rel, ".."), "%s: the desired state must not sit inside the directory atlas.sum covers", d)
		}
	})
}
