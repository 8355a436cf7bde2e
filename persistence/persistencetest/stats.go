package persistencetest

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// statsFixture returns a session whose times count back from now: a
// message completed 25 h ago with three deltas (one more after its
// completion), one completed 25 h ago with one delta, one completed 1 h
// ago with four, one not completed with two; a thread archived 10 days
// ago, one archived 4 days and deleted 2 days ago, and a project deleted
// 3 h ago. 34 events in 7 streams.
func statsFixture(now time.Time) []orchestration.Event {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const h, day = time.Hour, 24 * time.Hour
	long := strings.Repeat("streamed text of a long reply ", 2) // 60 bytes a delta
	delta := func(thread, turn, msg, text string, at time.Time) orchestration.Event {
		return orchestration.MessageDelta{ThreadID: thread, TurnID: turn, MessageID: msg, Delta: text, At: at}
	}
	added := func(thread, turn, msg string, at time.Time) orchestration.Event {
		return orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: msg, Role: orchestration.RoleAssistant, Streaming: true, At: at}
	}
	completed := func(thread, turn, msg string, at time.Time) orchestration.Event {
		return orchestration.MessageCompleted{ThreadID: thread, TurnID: turn, MessageID: msg, At: at}
	}
	return []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: ago(30 * day)},
		orchestration.ProjectCreated{ProjectID: "p2", Name: "old", WorkspaceRoot: "/src/old", At: ago(30 * day)},
		orchestration.ProjectDeleted{ProjectID: "p2", At: ago(3 * h)},

		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: ago(26 * h)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: ago(26 * h)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "Why does CI fail?", At: ago(26 * h)},
		added("t1", "u1", "m2", ago(26*h)),
		delta("t1", "u1", "m2", long, ago(26*h-time.Second)),
		delta("t1", "u1", "m2", long, ago(26*h-2*time.Second)),
		delta("t1", "u1", "m2", long, ago(26*h-3*time.Second)),
		completed("t1", "u1", "m2", ago(25*h)),
		delta("t1", "u1", "m2", "late", ago(25*h)), // after its completion: not folded
		added("t1", "u1", "m3", ago(25*h)),
		delta("t1", "u1", "m3", "ünïcode ✓ — "+long, ago(25*h)), // bytes, not characters
		completed("t1", "u1", "m3", ago(25*h)),
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u1", At: ago(25 * h)},

		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p1", Title: "Docs", Model: "gpt-5", At: ago(2 * h)},
		orchestration.TurnStarted{ThreadID: "t2", TurnID: "u2", At: ago(2 * h)},
		added("t2", "u2", "m4", ago(2*h)),
		delta("t2", "u2", "m4", "one ", ago(2*h)),
		delta("t2", "u2", "m4", "two ", ago(2*h)),
		delta("t2", "u2", "m4", "three ", ago(2*h)),
		delta("t2", "u2", "m4", "four", ago(2*h)),
		completed("t2", "u2", "m4", ago(h)),
		added("t2", "u2", "m5", ago(h)),
		delta("t2", "u2", "m5", "still ", ago(h)),
		delta("t2", "u2", "m5", "going", ago(h)),
		orchestration.TurnInterrupted{ThreadID: "t2", TurnID: "u2", At: ago(h)},

		orchestration.ThreadCreated{ThreadID: "t3", ProjectID: "p1", Title: "Old idea", Model: "o4-mini", At: ago(11 * day)},
		orchestration.ThreadArchived{ThreadID: "t3", At: ago(10 * day)},

		orchestration.ThreadCreated{ThreadID: "t4", ProjectID: "p1", Title: "Scratch", Model: "o4-mini", At: ago(5 * day)},
		orchestration.ThreadArchived{ThreadID: "t4", At: ago(4 * day)},
		orchestration.ThreadDeleted{ThreadID: "t4", At: ago(2 * day)},

		orchestration.SettingChanged{Key: "theme", Value: json.RawMessage(`"dark"`), At: ago(30 * day)},
	}
}

// storedSizes reads every payload as the database holds it and sums its
// bytes per type and per stream, in Go.
func storedSizes(t *testing.T, s *setup) (types []persistence.TypeStats, streams []persistence.StreamStats) {
	t.Helper()
	rows, err := s.store.Client().QueryContext(s.ctx, "SELECT event_type, stream_id, stream_version, payload FROM events")
	require.NoError(t, err)
	defer rows.Close()
	byType, byStream := map[string]*persistence.TypeStats{}, map[string]*persistence.StreamStats{}
	for rows.Next() {
		var (
			typ, stream string
			version     int64
			payload     []byte
		)
		require.NoError(t, rows.Scan(&typ, &stream, &version, &payload))
		if byType[typ] == nil {
			byType[typ] = &persistence.TypeStats{Type: typ}
		}
		byType[typ].Events++
		byType[typ].Bytes += int64(len(payload))
		if byStream[stream] == nil {
			byStream[stream] = &persistence.StreamStats{Stream: stream}
		}
		byStream[stream].Events++
		byStream[stream].Bytes += int64(len(payload))
		byStream[stream].Version = max(byStream[stream].Version, version)
	}
	require.NoError(t, rows.Err())
	for _, v := range byType {
		types = append(types, *v)
	}
	slices.SortFunc(types, func(a, b persistence.TypeStats) int { return strings.Compare(a.Type, b.Type) })
	for _, v := range byStream {
		streams = append(streams, *v)
	}
	slices.SortFunc(streams, func(a, b persistence.StreamStats) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Stream, b.Stream))
	})
	return types, streams
}

func runStats(t *testing.T, h Harness) {
	// Stats counts a known session exactly: events and payload bytes per
	// type and per stream, the largest streams in order, what compaction
	// would fold (messages completed 25 h ago, not 1 h ago), the deleted
	// and archived streams, and nothing prunable under the default policy.
	t.Run("CountsAFixture", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		now := time.Now().UTC().Truncate(time.Second)
		_, err := s.store.Append(s.ctx, nil, statsFixture(now)...)
		require.NoError(t, err)
		types, streams := storedSizes(t, s)

		st, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		require.Equal(t, types, st.Types)
		counts := map[string]int64{}
		var total int64
		for _, ty := range st.Types {
			counts[ty.Type] = ty.Events
			total += ty.Bytes
		}
		require.Equal(t, map[string]int64{
			"project.created": 2, "project.deleted": 1, "thread.created": 4, "thread.archived": 2, "thread.deleted": 1,
			"turn.started": 2, "turn.completed": 1, "turn.interrupted": 1,
			"message.added": 5, "message.delta": 11, "message.completed": 3, "setting.changed": 1,
		}, counts)
		require.Equal(t, int64(34), st.Events)
		require.Equal(t, int64(34), st.Head)
		require.Equal(t, total, st.Bytes)
		require.Equal(t, int64(7), st.Streams)
		require.Len(t, st.Largest, 7) // fewer streams than the default 10
		require.Equal(t, streams, st.Largest)
		require.Equal(t, "thread:t1", st.Largest[0].Stream)
		require.Equal(t, persistence.StreamStats{Stream: "thread:t2", Events: 12, Bytes: st.Largest[1].Bytes, Version: 12}, st.Largest[1])

		require.Equal(t, persistence.Retention{}, st.Retention)
		require.WithinDuration(t, time.Now().Add(-persistence.DefaultCompactAfter), st.Compaction.Before, time.Minute)
		require.Equal(t, int64(1), st.Compaction.Messages, "only m2: m3 has one delta, m4 was completed 1 h ago, m5 is not completed")
		require.Equal(t, int64(2), st.Compaction.Events, "m2's three deltas fold into one; the late one stays")

		require.Equal(t, persistence.StreamSet{Streams: 2, Events: 5, Bytes: byteSum(streams, "project:p2", "thread:t4")}, st.Deleted)
		require.Equal(t, persistence.StreamSet{Streams: 1, Events: 2, Bytes: byteSum(streams, "thread:t3")}, st.Archived)
		require.Equal(t, persistence.PruneStats{}, st.Prunable, "the default policy prunes nothing")

		db := st.Database
		require.Positive(t, db.Bytes)
		var tables []string
		for _, tb := range db.Tables {
			tables = append(tables, tb.Table)
			require.GreaterOrEqual(t, tb.TotalBytes, tb.TableBytes+tb.IndexBytes, tb.Table)
		}
		require.Equal(t, []string{"atlas_schema_revisions", "checkpoints", "compacted_commands", "compactions", "events", "projection_messages", "projection_projects",
			"projection_state", "projection_threads", "projection_turns", "settings", "stream_tombstones"}, tables)
		events := db.Tables[slices.IndexFunc(db.Tables, func(tb persistence.TableStats) bool { return tb.Table == "events" })]
		require.Positive(t, events.TableBytes)
		require.Positive(t, events.IndexBytes)
		if db.PageSize > 0 { // SQLite
			require.Equal(t, db.PageSize*db.PageCount, db.Bytes)
			require.LessOrEqual(t, db.FreePages, db.PageCount)
			if h.Durable {
				require.Positive(t, db.FileBytes+db.WALBytes)
			}
		}
	})

	// A policy moves the horizons: compaction after 30 min takes m4 too;
	// pruning what was deleted over a day ago or archived over a week ago
	// takes t4 and t3, not p2; archived over 3 days ago takes t4, deleted
	// since, as well.
	t.Run("CountsUnderAPolicy", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		now := time.Now().UTC().Truncate(time.Second)
		_, err := s.store.Append(s.ctx, nil, statsFixture(now)...)
		require.NoError(t, err)
		_, streams := storedSizes(t, s)

		pol := persistence.Retention{CompactAfter: 30 * time.Minute, PruneDeletedAfter: 24 * time.Hour, PruneArchivedAfter: 7 * 24 * time.Hour}
		st, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: pol, Largest: 2})
		require.NoError(t, err)
		require.Equal(t, pol, st.Retention)
		require.Equal(t, int64(2), st.Compaction.Messages)
		require.Equal(t, int64(2+3), st.Compaction.Events)
		require.Equal(t, persistence.StreamSet{Streams: 2, Events: 5, Bytes: byteSum(streams, "thread:t3", "thread:t4")}, st.Prunable.StreamSet)
		require.Equal(t, st.At.Add(-24*time.Hour), st.Prunable.DeletedBefore)
		require.Equal(t, st.At.Add(-7*24*time.Hour), st.Prunable.ArchivedBefore)
		require.Equal(t, []string{"thread:t1", "thread:t2"}, []string{st.Largest[0].Stream, st.Largest[1].Stream})
		require.Len(t, st.Largest, 2)
		require.Equal(t, int64(7), st.Streams)

		st, err = s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: persistence.Retention{PruneArchivedAfter: 3 * 24 * time.Hour}})
		require.NoError(t, err)
		require.Equal(t, persistence.StreamSet{Streams: 2, Events: 5, Bytes: byteSum(streams, "thread:t3", "thread:t4")}, st.Prunable.StreamSet)
		require.True(t, st.Prunable.DeletedBefore.IsZero())

		st, err = s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: persistence.Retention{PruneDeletedAfter: time.Hour}})
		require.NoError(t, err)
		require.Equal(t, persistence.StreamSet{Streams: 2, Events: 5, Bytes: byteSum(streams, "project:p2", "thread:t4")}, st.Prunable.StreamSet)

		_, err = s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: persistence.Retention{PruneDeletedAfter: -time.Hour}})
		require.ErrorContains(t, err, "PruneDeletedAfter is -1h0m0s; want 0 or more")
		_, err = s.store.StatsWith(s.ctx, &persistence.StatsOpts{Largest: -1})
		require.Error(t, err)
	})

	t.Run("EmptyStore", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		st, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		require.Zero(t, st.Events)
		require.Zero(t, st.Streams)
		require.Empty(t, st.Types)
		require.Empty(t, st.Largest)
		require.Equal(t, persistence.CompactionStats{Before: st.Compaction.Before}, st.Compaction)
		require.Equal(t, persistence.StreamSet{}, st.Deleted)
		require.NotEmpty(t, st.Database.Tables)
	})

	// A cancelled context ends Stats with the context's error, and the
	// store goes on working.
	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, statsFixture(time.Now())...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(s.ctx)
		cancel()
		_, err = s.store.Stats(ctx)
		require.ErrorIs(t, err, context.Canceled)
		st, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(34), st.Events)
		_, err = s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: T0})
		require.NoError(t, err)
	})

	// A read-only store reads the same stats, and stats change nothing.
	t.Run("ReadOnly", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store cannot be opened again")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, statsFixture(time.Now())...)
		require.NoError(t, err)
		want, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		ro, err := persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{ReadOnly: true})
		require.NoError(t, err)
		defer ro.Close()
		got, err := ro.Stats(s.ctx)
		require.NoError(t, err)
		require.Equal(t, want.Types, got.Types)
		require.Equal(t, want.Largest, got.Largest)
		require.Equal(t, want.Compaction.Events, got.Compaction.Events)
		require.Equal(t, want.Deleted, got.Deleted)
		require.Equal(t, want.Archived, got.Archived)
		requireVerified(t, s)
	})
}

// byteSum adds the bytes of the named streams.
func byteSum(streams []persistence.StreamStats, names ...string) int64 {
	var n int64
	for _, s := range streams {
		if slices.Contains(names, s.Stream) {
			n += s.Bytes
		}
	}
	return n
}
