package persistence_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestPruneAppendLatency measures, on the 8-agent, 25-hour workload in a
// SQLite file (PEON_BENCH_PRUNE=postgres: on PEON_TEST_POSTGRES_URL), the
// latency of appends that another goroutine makes while Prune removes the
// threads deleted before 2026-11-03 and archived before 2026-11-02 20:00,
// against the same appends just before, in one run; then compaction and
// the log's rows and database bytes before and after both. Opt-in: set
// PEON_BENCH_PRUNE=sqlite (or postgres).
func TestPruneAppendLatency(t *testing.T) {
	engine := os.Getenv("PEON_BENCH_PRUNE")
	if engine == "" {
		t.Skip("set PEON_BENCH_PRUNE=sqlite or postgres to measure pruning on the long workload")
	}
	ctx := t.Context()
	dsn := filepath.Join(t.TempDir(), "peon.db")
	if engine == "postgres" {
		dsn = dbtest.PostgresSchema(t)
	}
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	_, err = workload.Generate(ctx, s, workload.Options{Agents: 8, Hours: 25, Seed: 1})
	require.NoError(t, err)
	before, err := s.Stats(ctx)
	require.NoError(t, err)

	at := time.Now().UTC()
	_, err = s.Append(ctx, nil, orchestration.ThreadCreated{ThreadID: "bench", ProjectID: "p", Title: "b", Model: "m", At: at},
		orchestration.TurnStarted{ThreadID: "bench", TurnID: "u", At: at})
	require.NoError(t, err)
	reply := func(i int) []orchestration.Event {
		at := time.Now().UTC()
		id := fmt.Sprintf("m%d", i)
		return []orchestration.Event{
			orchestration.MessageAdded{ThreadID: "bench", TurnID: "u", MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at},
			orchestration.MessageDelta{ThreadID: "bench", TurnID: "u", MessageID: id, Delta: "a reply, streamed", At: at},
			orchestration.MessageCompleted{ThreadID: "bench", TurnID: "u", MessageID: id, At: at},
		}
	}
	without := appendFor(ctx, t, s, 3*time.Second, time.Millisecond, reply)
	during := startAppender(ctx, t, s, time.Millisecond, func(i int) []orchestration.Event { return reply(1_000_000 + i) })
	begin := time.Now()
	rep, err := s.Prune(ctx, &persistence.PruneOpts{
		DeletedBefore:  time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		ArchivedBefore: time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)})
	took := time.Since(begin)
	during.stop()
	require.NoError(t, err)
	t.Logf("prune: %d streams, %d events, %d payload bytes, %d projection rows in %v; freed %d bytes, reclaimed %d",
		rep.Streams, rep.Events, rep.Bytes, rep.ProjectionRows, took.Round(time.Millisecond), rep.BytesFreed, rep.BytesReclaimed)
	t.Logf("appends without prune: %s", without)
	t.Logf("appends during prune:  %s", during)

	crep, err := s.Compact(ctx, nil)
	require.NoError(t, err)
	after, err := s.Stats(ctx)
	require.NoError(t, err)
	t.Logf("compact: %d events removed; rows %d -> %d (%.1fx fewer), database %d -> %d bytes (%.1fx smaller)",
		crep.Events, before.Events, after.Events, float64(before.Events)/float64(after.Events),
		before.Database.Bytes, after.Database.Bytes, float64(before.Database.Bytes)/float64(after.Database.Bytes))
	r, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Problems)
}
