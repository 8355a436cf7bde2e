package migrategen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// copyDir copies the migration directory of a dialect into a temporary
// directory and returns it.
func copyDir(t *testing.T, dialectName string) string {
	t.Helper()
	src := filepath.Join(repoMigrations, dialectName)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// editView rewrites, in every file of dir, the statement of the view
// with edit, and rehashes dir.
func editView(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	require.NoError(t, err)
	changed := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		if after := edit(string(b)); after != string(b) {
			changed = true
			require.NoError(t, os.WriteFile(f, []byte(after), 0o644))
		}
	}
	require.True(t, changed, "no file holds the view")
	require.NoError(t, Hash(dir))
}

func TestCheckViews(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	view := Views("sqlite")[0]
	t.Run("TheCommittedDirectory", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, CheckViews(ctx, "sqlite", filepath.Join(repoMigrations, "sqlite")))
		require.NoError(t, Check(ctx, "sqlite", filepath.Join(repoMigrations, "sqlite")))
	})
	t.Run("ADifferentView", func(t *testing.T) {
		t.Parallel()
		dir := copyDir(t, "sqlite")
		editView(t, dir, func(s string) string {
			return strings.Replace(s, view.SQL, strings.Replace(view.SQL, "m.created_at,", "m.created_at AS made,", 1), 1)
		})
		require.ErrorContains(t, CheckViews(ctx, "sqlite", dir), "creates view projection_messages_live as")
		require.ErrorContains(t, Check(ctx, "sqlite", dir), "creates view projection_messages_live as")
	})
	t.Run("NoView", func(t *testing.T) {
		t.Parallel()
		dir := copyDir(t, "sqlite")
		editView(t, dir, func(s string) string {
			return strings.Replace(s, view.SQL+";", "", 1)
		})
		require.ErrorContains(t, CheckViews(ctx, "sqlite", dir), "creates no view projection_messages_live")
	})
	t.Run("AnExtraView", func(t *testing.T) {
		t.Parallel()
		dir := copyDir(t, "sqlite")
		editView(t, dir, func(s string) string {
			return strings.Replace(s, view.SQL+";", view.SQL+";\nCREATE VIEW extra AS SELECT 1 AS one;", 1)
		})
		require.ErrorContains(t, CheckViews(ctx, "sqlite", dir), "creates view extra")
	})
}
