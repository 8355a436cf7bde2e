package persistence_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestLogGrowth writes the long multi-agent workload, measures the store
// (event rows, database bytes, a full replay, a Rebuild), applies a
// retention policy that compacts every completed message and prunes every
// deleted and archived stream (Maintain: Prune, then Compact with its
// vacuum) while a writer appends single events to another stream, and
// measures again: rows and bytes before and after, replay and Rebuild
// before and after, and the writer's p99 Append latency during the
// maintenance against the same length of time before it. By default a
// small workload (2 agents, 2 hours) on a SQLite file and on PostgreSQL,
// checking what must hold; PEON_GROWTH=1 runs the workload (8
// agents, 25 hours) and logs the figures of docs/BENCHMARKS.md.
func TestLogGrowth(t *testing.T) {
	full := os.Getenv("PEON_GROWTH") == "1"
	wo := workload.Options{Agents: 2, Hours: 2, Seed: 7}
	if full {
		wo = workload.Options{Agents: 8, Hours: 25, Seed: 1}
	} else if testing.Short() {
		t.Skip("a workload of thousands of events")
	}
	for name, dsn := range map[string]func(t *testing.T) string{
		"SQLite":   func(t *testing.T) string { return dbtest.SQLiteFile(t) },
		"Postgres": func(t *testing.T) string { return dbtest.PostgresSchema(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s, err := persistence.Open(ctx, dsn(t))
			require.NoError(t, err)
			defer s.Close()
			rep, err := workload.Generate(ctx, s, wo)
			require.NoError(t, err)
			t.Logf("workload: %d events in %d appends, %d threads (%d archived, %d deleted), %d deltas, in %s",
				rep.Events, rep.Appends, rep.Threads, rep.ArchivedThreads, rep.DeletedThreads, rep.Deltas, rep.Elapsed.Round(time.Millisecond))
			// Every message of the workload is completed in the past and
			// every deletion and archiving older than a minute.
			pol := persistence.Retention{CompactAfter: time.Minute, PruneDeletedAfter: time.Minute, PruneArchivedAfter: time.Minute}

			before := measureGrowth(t, s, pol)
			// The writer's latencies for as long as maintenance takes,
			// first without it, then during it.
			w := startLatencyWriter(ctx, t, s)
			mstart := time.Now()
			mrep, err := s.MaintainWithReport(ctx, pol)
			require.NoError(t, err)
			mtime := time.Since(mstart)
			during := w.stop()
			w = startLatencyWriter(ctx, t, s)
			time.Sleep(mtime)
			without := w.stop()
			after := measureGrowth(t, s, pol)

			v, err := s.Verify(ctx)
			require.NoError(t, err)
			require.True(t, v.OK(), "%v", v.Problems)
			require.Equal(t, before.stats.Prunable.Events, mrep.Prune.Events, "Prune removed what Stats counted")
			require.LessOrEqual(t, mrep.Compact.Events, before.stats.Compaction.Events, "Compact folded no more than Stats counted (less: some of it was in pruned streams)")
			require.Less(t, after.stats.Events, before.stats.Events/2, "deltas fold and deleted streams go")
			require.Zero(t, after.stats.Compaction.Events)
			require.Zero(t, after.stats.Prunable.Streams)

			t.Logf("maintenance: %d streams pruned, %d messages compacted, %d events (%d payload bytes) removed, %d bytes reclaimed, in %s",
				mrep.Prune.Streams, mrep.Compact.Messages, mrep.Events, mrep.Bytes, mrep.Reclaimed, mtime.Round(time.Millisecond))
			t.Logf("| | before | after | before ÷ after |")
			t.Logf("| --- | ---: | ---: | ---: |")
			t.Logf("| event rows | %d | %d | %.1f× |", before.stats.Events, after.stats.Events, float64(before.stats.Events)/float64(after.stats.Events))
			t.Logf("| database bytes | %d | %d | %.1f× |", before.bytes, after.bytes, float64(before.bytes)/float64(after.bytes))
			t.Logf("| full replay | %s | %s | %.1f× |", before.replay.Round(time.Millisecond), after.replay.Round(time.Millisecond), before.replay.Seconds()/after.replay.Seconds())
			t.Logf("| Rebuild | %s | %s | %.1f× |", before.rebuild.Round(time.Millisecond), after.rebuild.Round(time.Millisecond), before.rebuild.Seconds()/after.rebuild.Seconds())
			t.Logf("concurrent single-event Appends: without maintenance %s, during it %s", without, during)
		})
	}
}

// growth is what measureGrowth read of a store.
type growth struct {
	stats           *persistence.Stats
	bytes           int64 // the pages in use on SQLite (page_count × page_size: the file once its WAL is checkpointed), peon's tables on PostgreSQL
	replay, rebuild time.Duration
}

func measureGrowth(t *testing.T, s *persistence.Store, pol persistence.Retention) growth {
	t.Helper()
	ctx := t.Context()
	st, err := s.StatsWith(ctx, &persistence.StatsOpts{Retention: pol})
	require.NoError(t, err)
	g := growth{stats: st, bytes: st.Database.Bytes}
	if st.Database.PageSize == 0 { // PostgreSQL: peon's tables with their indexes and TOAST
		g.bytes = 0
		for _, tb := range st.Database.Tables {
			g.bytes += tb.TotalBytes
		}
	}
	start := time.Now()
	n := int64(0)
	for _, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		n++
	}
	g.replay = time.Since(start)
	require.Equal(t, st.Events, n)
	start = time.Now()
	require.NoError(t, s.Rebuild(ctx, nil))
	g.rebuild = time.Since(start)
	return g
}

// latencyWriter runs one Append after another (each of the events
// events(i) gives, i counting from 0), pause apart, until stopped, and
// keeps each one's latency: the appends of another goroutine or process
// while maintenance runs.
type latencyWriter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lat    []time.Duration
}

func startAppender(ctx context.Context, t *testing.T, s *persistence.Store, pause time.Duration, events func(i int) []orchestration.Event) *latencyWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &latencyWriter{cancel: cancel}
	w.wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			evs := events(i)
			start := time.Now()
			_, err := s.Append(ctx, nil, evs...)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			w.lat = append(w.lat, time.Since(start))
			time.Sleep(pause)
		}
	})
	return w
}

// startLatencyWriter appends single setting.changed events, 2 ms apart.
func startLatencyWriter(ctx context.Context, t *testing.T, s *persistence.Store) *latencyWriter {
	return startAppender(ctx, t, s, 2*time.Millisecond, func(i int) []orchestration.Event {
		return []orchestration.Event{orchestration.SettingChanged{Key: "growth.writer", Value: []byte(fmt.Sprint(i)), At: time.Now()}}
	})
}

// appendFor runs events as startAppender does for d, and returns the
// latencies.
func appendFor(ctx context.Context, t *testing.T, s *persistence.Store, d, pause time.Duration, events func(i int) []orchestration.Event) *latencyWriter {
	w := startAppender(ctx, t, s, pause, events)
	time.Sleep(d)
	w.stop()
	return w
}

// stop ends the writer and describes its latencies.
func (w *latencyWriter) stop() string {
	w.cancel()
	w.wg.Wait()
	return w.String()
}

// String describes the latencies: count, p50, p99, max.
func (w *latencyWriter) String() string {
	if len(w.lat) == 0 {
		return "no Append"
	}
	slices.Sort(w.lat)
	q := func(p float64) time.Duration { return w.lat[min(len(w.lat)-1, int(p*float64(len(w.lat))))] }
	return fmt.Sprintf("%d Appends, p50 %s, p99 %s, max %s", len(w.lat),
		q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), w.lat[len(w.lat)-1].Round(time.Microsecond))
}
