package persistence_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestAppendStatementShapes appends batches of the sizes and stream counts
// that take each path of the append's statements: prepared and unprepared
// shapes, more streams than one head read looks up, and more rows than
// one INSERT carries, on a private in-memory database (one connection),
// on a file and on PostgreSQL.
func TestAppendStatementShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	// renames returns one thread.renamed event for each of n threads.
	renames := func(n int, title string) []orchestration.Event {
		evs := make([]orchestration.Event, n)
		for i := range evs {
			evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("t%04d", i), Title: title, At: at}
		}
		return evs
	}
	for name, dsn := range map[string]func(t *testing.T) string{
		"Memory": func(*testing.T) string { return ":memory:" },
		"File":   func(t *testing.T) string { return dbtest.SQLiteFile(t) },
		// Pipelined: several head reads, several INSERTs, in one round trip.
		"Postgres": func(t *testing.T) string { return dbtest.PostgresSchema(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := persistence.OpenWith(ctx, dsn(t), &persistence.Options{NoProjections: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })

			var want int64
			for round, n := range []int{1, 3, 8, 9, 501, 1203, 1203, 1} {
				recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: fmt.Sprintf("c%d", round)}, renames(n, fmt.Sprint(round))...)
				require.NoError(t, err)
				require.Len(t, recs, n)
				for i, r := range recs {
					want++
					require.Equal(t, want, r.Sequence)
					require.Equal(t, fmt.Sprintf("thread:t%04d", i), r.StreamID)
				}
			}
			// Each thread's version is the number of batches that reached it.
			versions := map[string]int64{}
			got := 0
			for r, err := range s.ReplayAll(ctx) {
				require.NoError(t, err)
				versions[r.StreamID]++
				require.Equal(t, versions[r.StreamID], r.StreamVersion, "sequence %d", r.Sequence)
				got++
			}
			require.EqualValues(t, want, got)
			require.EqualValues(t, 8, versions["thread:t0000"])
			require.EqualValues(t, 2, versions["thread:t1202"])

			// An expected version beyond the first head read's streams is checked.
			evs := renames(600, "x")
			_, err = s.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t0599": 1}}, evs...)
			require.ErrorIs(t, err, persistence.ErrVersionConflict)
			var conflict *persistence.VersionConflictError
			require.ErrorAs(t, err, &conflict)
			require.EqualValues(t, 2, conflict.Actual)
			// And a repeated command returns its first records.
			again, err := s.Append(ctx, &persistence.AppendOpts{CommandID: "c4"}, renames(501, "4")...)
			require.NoError(t, err)
			require.Len(t, again, 501)
			_, err = s.Append(ctx, &persistence.AppendOpts{CommandID: "c4"}, renames(2, "y")...)
			require.ErrorIs(t, err, persistence.ErrCommandConflict)
		})
	}
}
