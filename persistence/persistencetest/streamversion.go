package persistencetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// streamVersion returns the stream's current version, failing the test on
// an error.
func streamVersion(t *testing.T, s *persistence.Store, streamID string) int64 {
	t.Helper()
	v, err := s.StreamVersion(t.Context(), streamID)
	require.NoError(t, err)
	return v
}

// lastVersions returns the version of each stream's last event, read from
// a replay of the whole log.
func lastVersions(t *testing.T, s *persistence.Store) map[string]int64 {
	t.Helper()
	last := map[string]int64{}
	for _, r := range collect(t, s.ReplayAll(t.Context())) {
		last[r.StreamID] = max(last[r.StreamID], r.StreamVersion)
	}
	return last
}

func runStreamVersion(t *testing.T, h Harness) {
	// A stream without events is at NoStream, in an empty log and beside
	// other streams, whose names it only shares a prefix with.
	t.Run("NoEventsIsNoStream", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		require.Equal(t, persistence.NoStream, streamVersion(t, s.store, "thread:t1"))
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		for _, st := range []string{"thread:t2", "thread:t", "thread:t1 ", "project:t1", "setting"} {
			require.Equal(t, persistence.NoStream, streamVersion(t, s.store, st), st)
		}
	})

	// After appends, each stream is at the version of its last event,
	// and an append moves only its own streams on.
	t.Run("LastVersionAfterAppends", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		want := lastVersions(t, s.store)
		require.Len(t, want, 3) // project:p1, thread:t1, settings
		for st, v := range want {
			require.Equal(t, v, streamVersion(t, s.store, st), st)
		}
		recs, err := s.store.Append(s.ctx, nil,
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "again", At: T0},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "and again", At: T0})
		require.NoError(t, err)
		require.Equal(t, want["project:p1"]+2, recs[1].StreamVersion)
		require.Equal(t, recs[1].StreamVersion, streamVersion(t, s.store, "project:p1"))
		require.Equal(t, want["thread:t1"], streamVersion(t, s.store, "thread:t1"))
		require.Equal(t, want["settings"], streamVersion(t, s.store, "settings"))
	})

	// A service that restarts sets ExpectedVersions from StreamVersion,
	// without reading the stream: the current version lets its append
	// through, a stale one is a version conflict that writes nothing.
	t.Run("SetsExpectedVersionsAfterReopen", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store cannot be opened again")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		require.NoError(t, s.store.Close())

		again := h.open(t, s.dsn)
		v := streamVersion(t, again, "thread:t1")
		require.Equal(t, lastVersions(t, again)["thread:t1"], v)
		recs, err := again.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t1": v}},
			orchestration.ThreadRenamed{ThreadID: "t1", Title: "after the restart", At: T0})
		require.NoError(t, err)
		require.Equal(t, v+1, recs[0].StreamVersion)
		require.Equal(t, v+1, streamVersion(t, again, "thread:t1"))

		head, err := again.Head(s.ctx)
		require.NoError(t, err)
		_, err = again.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t1": v}},
			orchestration.ThreadRenamed{ThreadID: "t1", Title: "stale", At: T0})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		var vc *persistence.VersionConflictError
		require.ErrorAs(t, err, &vc)
		require.Equal(t, persistence.VersionConflictError{Stream: "thread:t1", Expected: v, Actual: v + 1}, *vc)
		after, err := again.Head(s.ctx)
		require.NoError(t, err)
		require.Equal(t, head, after, "a conflicting append wrote")
		require.Equal(t, v+1, streamVersion(t, again, "thread:t1"))
	})

	// A read-only store answers too, with what the writer stored.
	t.Run("ReadOnlyStore", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store cannot be opened again")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		ro, err := persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{ReadOnly: true})
		require.NoError(t, err)
		defer ro.Close()
		for st, v := range lastVersions(t, s.store) {
			require.Equal(t, v, streamVersion(t, ro, st), st)
		}
		require.Equal(t, persistence.NoStream, streamVersion(t, ro, "thread:none"))
		_, err = s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: T0})
		require.NoError(t, err)
		require.Equal(t, streamVersion(t, s.store, "settings"), streamVersion(t, ro, "settings"))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(s.ctx)
		cancel()
		_, err = s.store.StreamVersion(ctx, "thread:t1")
		require.ErrorIs(t, err, context.Canceled)
		// The store goes on answering.
		require.Equal(t, lastVersions(t, s.store)["thread:t1"], streamVersion(t, s.store, "thread:t1"))
	})

	t.Run("EmptyStreamIDIsRefused", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		v, err := s.store.StreamVersion(s.ctx, "")
		require.Error(t, err)
		require.Zero(t, v)
		require.Contains(t, err.Error(), "empty stream id")
	})

	t.Run("ClosedStoreRefuses", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		require.NoError(t, s.store.Close())
		_, err := s.store.StreamVersion(s.ctx, "thread:t1")
		require.ErrorIs(t, err, persistence.ErrClosed)
	})
}
