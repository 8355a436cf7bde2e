package peontest_test

import (
	"context"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/peontest"
	"github.com/peonhq/peon/persistence"
)

var at = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func TestOpen(t *testing.T) {
	t.Parallel()

	// The store has every embedded migration applied, as Open records
	// them, is empty, and appends and replays.
	t.Run("MigratedAndUsable", func(t *testing.T) {
		t.Parallel()
		s := peontest.Open(t)
		ctx := t.Context()

		rows, err := s.Client().QueryContext(ctx, "SELECT version FROM atlas_schema_revisions ORDER BY version")
		require.NoError(t, err)
		var applied []string
		for rows.Next() {
			var v string
			require.NoError(t, rows.Scan(&v))
			applied = append(applied, v)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Equal(t, migrationVersions(t), applied)

		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.Zero(t, head)
		recs, err := s.Append(ctx, nil,
			orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at},
			orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: at})
		require.NoError(t, err)
		require.Len(t, recs, 2)
		var types []string
		for rec, err := range s.ReplayAll(ctx) {
			require.NoError(t, err)
			types = append(types, rec.Type)
		}
		require.Equal(t, []string{orchestration.TypeProjectCreated, orchestration.TypeThreadCreated}, types)
	})

	// The store is closed once the test that opened it has ended.
	t.Run("ClosedAfterTheTest", func(t *testing.T) {
		t.Parallel()
		var s *persistence.Store
		t.Run("Opens", func(t *testing.T) {
			s = peontest.Open(t)
			_, err := s.Head(t.Context())
			require.NoError(t, err)
		})
		require.NotNil(t, s)
		_, err := s.Head(t.Context())
		require.ErrorIs(t, err, persistence.ErrClosed)
		for _, err := range s.ReplayAll(t.Context()) {
			require.ErrorIs(t, err, persistence.ErrClosed)
		}
	})

	// Each call has a store of its own.
	t.Run("StoresShareNothing", func(t *testing.T) {
		t.Parallel()
		a, b := peontest.Open(t), peontest.Open(t)
		_, err := a.Append(t.Context(), nil, orchestration.SettingChanged{Key: "k", Value: []byte("1"), At: at})
		require.NoError(t, err)
		head, err := b.Head(t.Context())
		require.NoError(t, err)
		require.Zero(t, head)
	})

	// A store that cannot be opened fails the test with Fatalf, which
	// ends it there: here the test's context is over before Open runs.
	t.Run("FailsTheTestWhenOpenFails", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var (
			s       *persistence.Store
			reached bool
		)
		ft := runTest(ctx, func(t testing.TB) {
			s = peontest.Open(t)
			reached = true
		})
		require.False(t, reached, "the test went on after Open failed")
		require.Nil(t, s)
		require.Len(t, ft.failures(), 1)
		require.Contains(t, ft.failures()[0], "peontest: open an in-memory store: ")
		require.Contains(t, ft.failures()[0], context.Canceled.Error())
	})

	// The package imports only persistence and the standard library, so
	// an application's tests get nothing else through it.
	t.Run("ImportsOnlyPersistenceAndTheStandardLibrary", func(t *testing.T) {
		t.Parallel()
		files, err := filepath.Glob("*.go")
		require.NoError(t, err)
		var imports []string
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, im := range af.Imports {
				p, err := strconv.Unquote(im.Path.Value)
				require.NoError(t, err)
				imports = append(imports, p)
			}
		}
		slices.Sort(imports)
		require.Equal(t, []string{"github.com/peonhq/peon/persistence", "testing"}, slices.Compact(imports))
	})
}

// migrationVersions returns the versions of the embedded SQLite
// migration files, in order.
func migrationVersions(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "migrations", "sqlite"))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if v, _, ok := strings.Cut(e.Name(), "_"); ok && strings.HasSuffix(e.Name(), ".sql") {
			out = append(out, v)
		}
	}
	require.NotEmpty(t, out)
	return out
}
