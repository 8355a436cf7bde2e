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

// TestCompactAppendLatency measures, on the 8-agent, 25-hour workload in a
// SQLite file (PEON_BENCH_COMPACT=postgres: on PEON_TEST_POSTGRES_URL),
// the latency of appends that another goroutine makes while Compact runs,
// against the same appends before and after it, in one run; and a full
// replay and a Rebuild before and after. Opt-in: it writes 216,916 events
// and takes tens of seconds; set PEON_BENCH_COMPACT=sqlite (or postgres).
func TestCompactAppendLatency(t *testing.T) {
	engine := os.Getenv("PEON_BENCH_COMPACT")
	if engine == "" {
		t.Skip("set PEON_BENCH_COMPACT=sqlite or postgres to measure compaction on the long workload")
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

	timed := func(what string, fn func()) time.Duration {
		begin := time.Now()
		fn()
		d := time.Since(begin)
		t.Logf("%s: %v", what, d.Round(time.Millisecond))
		return d
	}
	replay := func() {
		n := 0
		for _, err := range s.ReplayAll(ctx) {
			require.NoError(t, err)
			n++
		}
	}
	st, err := s.Stats(ctx)
	require.NoError(t, err)
	t.Logf("before: %d events, database %d bytes", st.Events, st.Database.Bytes)
	timed("replay before", replay)
	timed("rebuild before", func() { require.NoError(t, s.Rebuild(ctx, nil)) })

	// An appender: a thread of its own, 4 events an append (a message
	// added, two deltas, completed), one after another, 1 ms apart.
	_, err = s.Append(ctx, nil, orchestration.ThreadCreated{ThreadID: "bench", ProjectID: "p", Title: "b", Model: "m", At: time.Now().UTC()},
		orchestration.TurnStarted{ThreadID: "bench", TurnID: "u", At: time.Now().UTC()})
	require.NoError(t, err)
	reply := func(i int) []orchestration.Event {
		at := time.Now().UTC()
		id := fmt.Sprintf("m%d", i)
		return []orchestration.Event{
			orchestration.MessageAdded{ThreadID: "bench", TurnID: "u", MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at},
			orchestration.MessageDelta{ThreadID: "bench", TurnID: "u", MessageID: id, Delta: "some text of a reply ", At: at},
			orchestration.MessageDelta{ThreadID: "bench", TurnID: "u", MessageID: id, Delta: "and more of it", At: at},
			orchestration.MessageCompleted{ThreadID: "bench", TurnID: "u", MessageID: id, At: at},
		}
	}
	without := appendFor(ctx, t, s, 3*time.Second, time.Millisecond, reply)
	during := startAppender(ctx, t, s, time.Millisecond, func(i int) []orchestration.Event { return reply(1_000_000 + i) })
	var rep *persistence.CompactReport
	timed("compact", func() { rep, err = s.Compact(ctx, nil) })
	during.stop()
	require.NoError(t, err)
	t.Logf("compact: %d messages, %d events and %d payload bytes removed, %d bytes reclaimed, %d transactions",
		rep.Messages, rep.Events, rep.Bytes, rep.Reclaimed, rep.Compactions)
	after := appendFor(ctx, t, s, 3*time.Second, time.Millisecond, func(i int) []orchestration.Event { return reply(2_000_000 + i) })
	t.Logf("appends before compaction: %s", without)
	t.Logf("appends during compaction: %s", during)
	t.Logf("appends after compaction: %s", after)

	st, err = s.Stats(ctx)
	require.NoError(t, err)
	t.Logf("after: %d events, database %d bytes", st.Events, st.Database.Bytes)
	timed("replay after", replay)
	timed("rebuild after", func() { require.NoError(t, s.Rebuild(ctx, nil)) })
	verifyProjections(t, ctx, s)
}
