package persistence_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	// added, two deltas, completed), one after another.
	seq := 0
	appendOne := func() time.Duration {
		seq++
		at := time.Now().UTC()
		id := fmt.Sprintf("m%d", seq)
		evs := []orchestration.Event{
			orchestration.MessageAdded{ThreadID: "bench", TurnID: "u", MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at},
			orchestration.MessageDelta{ThreadID: "bench", TurnID: "u", MessageID: id, Delta: "some text of a reply ", At: at},
			orchestration.MessageDelta{ThreadID: "bench", TurnID: "u", MessageID: id, Delta: "and more of it", At: at},
			orchestration.MessageCompleted{ThreadID: "bench", TurnID: "u", MessageID: id, At: at},
		}
		begin := time.Now()
		_, err := s.Append(ctx, nil, evs...)
		require.NoError(t, err)
		return time.Since(begin)
	}
	_, err = s.Append(ctx, nil, orchestration.ThreadCreated{ThreadID: "bench", ProjectID: "p", Title: "b", Model: "m", At: time.Now().UTC()},
		orchestration.TurnStarted{ThreadID: "bench", TurnID: "u", At: time.Now().UTC()})
	require.NoError(t, err)
	appendFor := func(stop <-chan struct{}, d time.Duration) []time.Duration {
		var lat []time.Duration
		end := time.Now().Add(d)
		for {
			select {
			case <-stop:
				return lat
			default:
			}
			if d > 0 && time.Now().After(end) {
				return lat
			}
			lat = append(lat, appendOne())
			time.Sleep(time.Millisecond)
		}
	}
	report := func(what string, lat []time.Duration) {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		t.Logf("appends %s: %d, p50 %v, p99 %v, max %v", what, len(lat), q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	}

	without := appendFor(nil, 3*time.Second)
	stop := make(chan struct{})
	result := make(chan []time.Duration)
	go func() { result <- appendFor(stop, 0) }()
	var rep *persistence.CompactReport
	timed("compact", func() { rep, err = s.Compact(ctx, nil) })
	close(stop)
	during := <-result
	require.NoError(t, err)
	t.Logf("compact: %d messages, %d events and %d payload bytes removed, %d bytes reclaimed, %d transactions",
		rep.Messages, rep.Events, rep.Bytes, rep.Reclaimed, rep.Compactions)
	after := appendFor(nil, 3*time.Second)
	report("before compaction", without)
	report("during compaction", during)
	report("after compaction", after)

	st, err = s.Stats(ctx)
	require.NoError(t, err)
	t.Logf("after: %d events, database %d bytes", st.Events, st.Database.Bytes)
	timed("replay after", replay)
	timed("rebuild after", func() { require.NoError(t, s.Rebuild(ctx, nil)) })
	verifyProjections(t, ctx, s)
}
