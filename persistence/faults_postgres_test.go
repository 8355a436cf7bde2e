package persistence_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// TestPostgresTerminatedRebuildAndVerify terminates the server processes
// of a store's connections while Rebuild or Verify works on one of them:
// in the middle of building the rebuild aside, in the swap of a Rebuild,
// and in the read transaction that ends a Verify. Each returns an error
// (before, they panicked on a nil connection), the projections are as
// they were, and the store works on.
func TestPostgresTerminatedRebuildAndVerify(t *testing.T) {
	t.Parallel()
	dbtest.PostgresURL(t) // skips without a server
	for _, tc := range []struct {
		name   string
		verify bool
		swap   bool // wait for the swap, after another store appended
	}{
		{name: "RebuildBuilding"},
		{name: "RebuildSwapping", swap: true},
		{name: "VerifyBuilding", verify: true},
		{name: "VerifyComparing", verify: true, swap: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := dbtest.NamedPostgresSchema(t)
			s, err := persistence.Open(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
			require.NoError(t, err)
			_, err = s.Append(ctx, nil, append([]orchestration.Event{
				orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: persistencetest.T0},
				orchestration.ThreadCreated{ThreadID: "big", ProjectID: "p", Title: "t", Model: "m", At: persistencetest.T0},
			}, persistencetest.Deltas("big", 2300)...)...)
			require.NoError(t, err)
			_, err = s.Client().ExecContext(ctx, "UPDATE projection_threads SET title = 'stale' WHERE thread_id = 'big'")
			require.NoError(t, err)
			other, err := persistence.Open(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(func() { other.Close() })

			var built int64
			terminated := 0
			progress := func(done, total int64) {
				if terminated > 0 {
					return
				}
				if built == 0 {
					built = total
				}
				switch {
				case !tc.swap && done > 0 && done < total,
					tc.swap && !tc.verify && total > built: // the swap's page
					terminated = dbtest.TerminateBackends(t, dsn)
				case tc.swap && done == total:
					_, err := other.Append(ctx, nil, orchestration.SettingChanged{Key: "during", Value: json.RawMessage(`1`), At: persistencetest.T0})
					require.NoError(t, err)
					if tc.verify { // the build is done; Verify compares next
						terminated = dbtest.TerminateBackends(t, dsn)
					}
				}
			}
			if tc.verify {
				persistence.SetVerifyProgress(s, progress)
				_, err = s.Verify(ctx)
				persistence.SetVerifyProgress(s, nil)
			} else {
				err = s.Rebuild(ctx, &persistence.RebuildOpts{Progress: progress})
			}
			require.NotZero(t, terminated, "no connection was terminated")
			require.Error(t, err)
			t.Logf("%d backends terminated: %v", terminated, err)
			require.NotErrorIs(t, err, context.Canceled)

			var title string
			queryOne(t, s.Client(), "SELECT title FROM projection_threads WHERE thread_id = 'big'", nil, &title)
			require.Equal(t, "stale", title, "the projections changed")
			require.NoError(t, s.Rebuild(ctx, nil))
			queryOne(t, s.Client(), "SELECT title FROM projection_threads WHERE thread_id = 'big'", nil, &title)
			require.Equal(t, "t", title)
			verifyProjections(t, ctx, s)
			_, err = s.Append(ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`2`), At: persistencetest.T0})
			require.NoError(t, err)
			verifyProjections(t, ctx, s)
		})
	}
}
