package persistencetest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

func runMaintain(t *testing.T, h Harness) {
	pol := persistence.Retention{CompactAfter: 30 * time.Minute, PruneDeletedAfter: 24 * time.Hour, PruneArchivedAfter: 7 * 24 * time.Hour}

	// Maintain removes what Stats counted under the same policy, no more
	// and no less: the prunable streams' events and the folded deltas.
	// Afterwards Stats finds nothing left to remove, the rest of the log
	// is untouched and Verify calls the store sound.
	t.Run("RemovesWhatStatsCounts", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		now := time.Now().UTC().Truncate(time.Second)
		_, err := s.store.Append(s.ctx, nil, statsFixture(now)...)
		require.NoError(t, err)
		before, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: pol})
		require.NoError(t, err)
		require.Positive(t, before.Prunable.Streams)
		require.Positive(t, before.Compaction.Events)

		rep, err := s.store.MaintainWithReport(s.ctx, pol)
		require.NoError(t, err)
		require.NotNil(t, rep.Prune)
		require.NotNil(t, rep.Compact)
		require.Equal(t, before.Prunable.Streams, rep.Prune.Streams)
		require.Equal(t, before.Prunable.Events, rep.Prune.Events)
		require.Equal(t, before.Compaction.Events, rep.Compact.Events)
		require.Equal(t, before.Prunable.Events+before.Compaction.Events, rep.Events)
		require.Equal(t, rep.Prune.Bytes+rep.Compact.Bytes, rep.Bytes)
		require.Zero(t, rep.Prune.BytesReclaimed, "Maintain gives the space back once, after both")
		require.Zero(t, rep.Compact.Reclaimed, "Maintain gives the space back once, after both")

		after, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: pol})
		require.NoError(t, err)
		require.Equal(t, before.Events-rep.Events, after.Events)
		if before.Database.PageSize > 0 {
			// SQLite: the file's own pages, which nothing else changes
			// (PostgreSQL's database size counts other tests' schemas).
			require.Equal(t, max(0, before.Database.Bytes-after.Database.Bytes), rep.Reclaimed)
			require.Zero(t, after.Database.FreePages, "the space given back")
		}
		require.Zero(t, after.Prunable.Streams, "nothing left to prune")
		require.Zero(t, after.Compaction.Events, "nothing left to fold")
		requireSound(t, s.store)

		again, err := s.store.MaintainWithReport(s.ctx, pol)
		require.NoError(t, err)
		require.Zero(t, again.Events, "a second run finds nothing")
	})

	// The zero policy compacts what was completed over 24 h ago and
	// prunes nothing.
	t.Run("DefaultPolicyOnlyCompacts", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, statsFixture(time.Now().UTC().Truncate(time.Second))...)
		require.NoError(t, err)
		before, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		rep, err := s.store.MaintainWithReport(s.ctx, persistence.Retention{})
		require.NoError(t, err)
		require.Nil(t, rep.Prune, "no pruning without a prune age")
		require.Equal(t, before.Compaction.Events, rep.Events)
		after, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		require.Equal(t, before.Deleted, after.Deleted, "deleted streams stay")
		require.Equal(t, before.Archived, after.Archived, "archived streams stay")
		requireSound(t, s.store)
	})

	// A negative age is refused, by Maintain and at open; so are
	// Retention on a read-only store and MaintainEvery without Retention.
	t.Run("Refusals", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		err := s.store.Maintain(s.ctx, persistence.Retention{PruneDeletedAfter: -time.Hour}) // SPEC §9's form
		require.ErrorContains(t, err, "PruneDeletedAfter is -1h0m0s; want 0 or more")
		_, err = s.store.MaintainWithReport(s.ctx, persistence.Retention{PruneArchivedAfter: -time.Hour})
		require.ErrorContains(t, err, "PruneArchivedAfter is -1h0m0s; want 0 or more")
		_, err = persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{Retention: &persistence.Retention{CompactAfter: -time.Second}})
		require.ErrorContains(t, err, "CompactAfter is -1s; want 0 or more")
		_, err = persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{MaintainEvery: time.Minute})
		require.ErrorContains(t, err, "MaintainEvery without Retention")
		_, err = persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{Retention: &persistence.Retention{}, MaintainEvery: -time.Minute})
		require.ErrorContains(t, err, "MaintainEvery is -1m0s")
		_, err = persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{ReadOnly: true, Retention: &persistence.Retention{}})
		require.ErrorContains(t, err, "Retention on a read-only store")
	})

	// A store opened with Options.Retention applies it by itself: at open
	// (what was appended before is maintained without a call), then at
	// every tick (what is appended later too), each run logged with its
	// counts; Close stops it.
	t.Run("InTheBackground", func(t *testing.T) {
		if !h.Durable {
			t.Skip("the store is opened twice; an in-memory database is gone with its first store")
		}
		t.Parallel()
		s := h.setup(t)
		now := time.Now().UTC().Truncate(time.Second)
		_, err := s.store.Append(s.ctx, nil, statsFixture(now)...)
		require.NoError(t, err)
		before, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: pol})
		require.NoError(t, err)
		s.store.Close()

		var logs syncBuffer
		log := slog.New(slog.NewJSONHandler(&logs, nil))
		bg, err := persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{Retention: &pol, MaintainEvery: 20 * time.Millisecond, Logger: log})
		require.NoError(t, err)
		defer bg.Close()
		done := func() []map[string]any {
			var out []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "peon: maintenance done" {
					out = append(out, m)
				}
			}
			return out
		}
		require.Eventually(t, func() bool { return len(done()) >= 1 }, 10*time.Second, 10*time.Millisecond, "a run at open")
		first := done()[0]
		require.EqualValues(t, before.Prunable.Events+before.Compaction.Events, first["events_removed"], "the run at open maintained what was there")
		require.EqualValues(t, before.Prunable.Streams, first["streams_pruned"])
		for _, k := range []string{"bytes_removed", "bytes_reclaimed", "messages_compacted", "duration"} {
			require.Contains(t, first, k)
		}

		// Deltas appended after open, of a message completed two days ago,
		// fold at a later tick.
		old := now.Add(-48 * time.Hour)
		_, err = bg.Append(s.ctx, nil,
			orchestration.ThreadCreated{ThreadID: "t9", ProjectID: "p1", Title: "Later", Model: "gpt-5", At: old},
			orchestration.TurnStarted{ThreadID: "t9", TurnID: "u9", At: old},
			orchestration.MessageAdded{ThreadID: "t9", TurnID: "u9", MessageID: "m9", Role: orchestration.RoleAssistant, Streaming: true, At: old},
			orchestration.MessageDelta{ThreadID: "t9", TurnID: "u9", MessageID: "m9", Delta: "one ", At: old},
			orchestration.MessageDelta{ThreadID: "t9", TurnID: "u9", MessageID: "m9", Delta: "two ", At: old},
			orchestration.MessageDelta{ThreadID: "t9", TurnID: "u9", MessageID: "m9", Delta: "three", At: old},
			orchestration.MessageCompleted{ThreadID: "t9", TurnID: "u9", MessageID: "m9", At: old},
		)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			st, err := bg.StatsWith(s.ctx, &persistence.StatsOpts{Retention: pol})
			return err == nil && st.Compaction.Events == 0
		}, 10*time.Second, 10*time.Millisecond, "a later tick compacts what came after open")
		require.NoError(t, bg.Close())
		n := len(done())
		time.Sleep(100 * time.Millisecond)
		require.Equal(t, n, len(done()), "no run after Close")
		for _, m := range done() {
			require.NotContains(t, m, "err")
		}
		require.NotContains(t, logs.String(), "maintenance failed")
	})
}

// syncBuffer is a bytes.Buffer safe for a logger in another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
