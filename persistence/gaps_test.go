package persistence_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// TestVerifyGaps removes an event by hand, one that changes no projection
// (a delta to a completed message), and checks that Verify and Rebuild
// call the hole a problem until a compactions row declares it, and not
// after; a hole declared in another stream leaves the stream's versions
// with a hole no record declares.
func TestVerifyGaps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), persistence.DBFileName)
	s, err := persistence.Open(ctx, path)
	require.NoError(t, err)
	evs := persistencetest.Deltas("t1", 3)
	evs = append([]orchestration.Event{orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "x", Model: "m", At: persistencetest.T0}}, evs...)
	evs = append(evs,
		orchestration.MessageCompleted{ThreadID: "t1", TurnID: "t1-turn", MessageID: "t1-msg", At: persistencetest.T0},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "t1-turn", MessageID: "t1-msg", Delta: "late", At: persistencetest.T0},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "y", At: persistencetest.T0},
	)
	recs, err := s.Append(ctx, nil, evs...)
	require.NoError(t, err)
	late := recs[len(recs)-2]
	require.Equal(t, orchestration.TypeMessageDelta, late.Type)
	require.NoError(t, s.Close())

	db := rawDB(t, path)
	_, err = db.Exec("DELETE FROM events WHERE sequence = ?", late.Sequence)
	require.NoError(t, err)

	check := func(t *testing.T, wantOK, wantMissing bool) {
		t.Helper()
		s, err := persistence.Open(ctx, path)
		require.NoError(t, err)
		defer s.Close()
		r, err := s.Verify(ctx)
		require.NoError(t, err)
		var res persistence.RebuildResult
		require.NoError(t, s.Rebuild(ctx, &persistence.RebuildOpts{Result: &res}))
		if wantOK {
			require.True(t, r.OK(), "%v", r.Problems)
			require.Zero(t, res.Missing)
			return
		}
		require.False(t, r.OK())
		kinds := map[persistence.ProblemKind]bool{}
		for _, p := range r.Problems {
			kinds[p.Kind] = true
		}
		require.True(t, kinds[persistence.ProblemStream], "%v", r.Problems)
		require.Equal(t, wantMissing, kinds[persistence.ProblemSequence], "%v", r.Problems)
		if wantMissing {
			require.EqualValues(t, 1, res.Missing)
			require.Equal(t, late.Sequence, res.FirstMissing)
		}
	}
	t.Run("Unrecorded", func(t *testing.T) { check(t, false, true) })

	record := func(stream string) {
		_, err := db.Exec("DELETE FROM compactions")
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO compactions (first_sequence, last_sequence, stream_id, first_version, last_version, events, bytes, compacted_at)
			VALUES (?, ?, ?, ?, ?, 1, 10, '2026-12-01 00:00:00')`, late.Sequence-1, late.Sequence, stream, late.StreamVersion-1, late.StreamVersion)
		require.NoError(t, err)
	}
	record("thread:t2")
	t.Run("RecordedForAnotherStream", func(t *testing.T) { check(t, false, false) })
	record(late.StreamID)
	t.Run("Recorded", func(t *testing.T) { check(t, true, false) })
}
