package persistence_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// sessionMix returns n events of a realistic agent session: per turn a
// user message, an assistant reply streamed as many deltas, a completion
// and a checkpoint, over several threads. About 90% are message.delta.
func sessionMix(n int) []orchestration.Event { return paddedSessionMix(n, "") }

// paddedSessionMix is sessionMix with pad appended to every delta, for
// long message texts.
func paddedSessionMix(n int, pad string) []orchestration.Event {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	evs := []orchestration.Event{orchestration.ProjectCreated{ProjectID: "p", Name: "bench", WorkspaceRoot: "/w", At: at}}
	for t := 0; len(evs) < n; t++ {
		th := fmt.Sprintf("t%d", t%8)
		if t < 8 {
			evs = append(evs, orchestration.ThreadCreated{ThreadID: th, ProjectID: "p", Title: "bench", Model: "m", At: at})
		}
		turn, user, asst := fmt.Sprintf("u%d", t), fmt.Sprintf("m%d-u", t), fmt.Sprintf("m%d-a", t)
		evs = append(evs,
			orchestration.TurnStarted{ThreadID: th, TurnID: turn, At: at},
			orchestration.MessageAdded{ThreadID: th, TurnID: turn, MessageID: user, Role: orchestration.RoleUser, Text: "please fix the failing test in persistence", At: at},
			orchestration.MessageAdded{ThreadID: th, TurnID: turn, MessageID: asst, Role: orchestration.RoleAssistant, Streaming: true, At: at})
		for d := range 60 {
			evs = append(evs, orchestration.MessageDelta{ThreadID: th, TurnID: turn, MessageID: asst, Delta: fmt.Sprintf("token%d ", d) + pad, At: at})
		}
		evs = append(evs,
			orchestration.MessageCompleted{ThreadID: th, TurnID: turn, MessageID: asst, At: at},
			orchestration.TurnCompleted{ThreadID: th, TurnID: turn, At: at},
			orchestration.CheckpointCreated{ThreadID: th, TurnID: turn, GitRef: "refs/peon/" + turn, Message: "cp", At: at})
	}
	return evs[:n]
}

// BenchmarkProjectedAppend compares appends that maintain the projection
// tables with bare appends of the same session, on a file database, one
// event per Append (a streamed reply as it arrives) and in batches of 100.
func BenchmarkProjectedAppend(b *testing.B) {
	benchProjectedAppend(b, func(b *testing.B, opts *persistence.Options) *persistence.Store {
		s, err := persistence.OpenWith(context.Background(), dbtest.SQLiteFile(b), opts)
		require.NoError(b, err)
		return s
	})
}

// benchProjectedAppend runs the projected and bare appends of a session on
// the stores open returns.
func benchProjectedAppend(b *testing.B, open func(*testing.B, *persistence.Options) *persistence.Store) {
	ctx := context.Background()
	evs := sessionMix(200_000)
	for _, batch := range []int{1, 100} {
		for _, mode := range []string{"bare", "projected"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, mode), func(b *testing.B) {
				s := open(b, &persistence.Options{NoProjections: mode == "bare"})
				defer s.Close()
				i := 0
				for b.Loop() {
					if i+batch > len(evs) {
						b.Fatal("session too short for b.N; lower -benchtime")
					}
					if _, err := s.Append(ctx, nil, evs[i:i+batch]...); err != nil {
						b.Fatal(err)
					}
					i += batch
				}
				b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// benchN is the length of the logs of BenchmarkRebuild and
// BenchmarkVerify: 100,000 events, 1,000,000 with PEON_BENCH_LARGE=1.
func benchN() int {
	if os.Getenv("PEON_BENCH_LARGE") != "" {
		return 1_000_000
	}
	return 100_000
}

// sessionStore writes evs to a new file database without projections
// and reopens it with opts.
func sessionStore(b *testing.B, evs []orchestration.Event, opts *persistence.Options) *persistence.Store {
	ctx := context.Background()
	path := dbtest.SQLiteFile(b)
	s, err := persistence.OpenWith(ctx, path, &persistence.Options{NoProjections: true})
	require.NoError(b, err)
	for len(evs) > 0 {
		k := min(len(evs), 10_000)
		_, err := s.Append(ctx, nil, evs[:k]...)
		require.NoError(b, err)
		evs = evs[k:]
	}
	require.NoError(b, s.Close())
	s, err = persistence.OpenWith(ctx, path, opts)
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

// peakHeapMiB runs fn and returns the highest Go heap in use
// (MemStats.HeapInuse) sampled every 20 ms meanwhile, in MiB.
func peakHeapMiB(fn func()) float64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return float64(peak.Load()) / (1 << 20)
}

// BenchmarkRebuild rebuilds the projections of a session of benchN events
// and reports events/s and the peak Go heap seen during the rebuild.
func BenchmarkRebuild(b *testing.B) {
	n := benchN()
	s := sessionStore(b, sessionMix(n), &persistence.Options{NoProjections: true})
	peak := peakHeapMiB(func() {
		for b.Loop() {
			err := s.Rebuild(context.Background(), nil)
			require.NoError(b, err)
		}
	})
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(peak, "peak-heap-MiB")
}

// BenchmarkVerify verifies a sound store of benchN events whose assistant
// replies are long (60 deltas of about 200 bytes: 12 KB a message), and
// reports events/s and the peak Go heap seen during Verify.
func BenchmarkVerify(b *testing.B) {
	n := benchN()
	s := sessionStore(b, paddedSessionMix(n, strings.Repeat("x", 192)), nil)
	peak := peakHeapMiB(func() {
		for b.Loop() {
			r, err := s.Verify(context.Background())
			require.NoError(b, err)
			require.True(b, r.OK(), "%v", r.Problems)
		}
	})
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(peak, "peak-heap-MiB")
}

// BenchmarkIntegrityCheck runs, on the store of BenchmarkVerify, the
// integrity check Verify runs first (PRAGMA integrity_check) and the
// quicker one it does not use (quick_check, which does not check that
// each index holds exactly its table's rows), and reports events/s.
func BenchmarkIntegrityCheck(b *testing.B) {
	n := benchN()
	s := sessionStore(b, paddedSessionMix(n, strings.Repeat("x", 192)), nil)
	db, err := sql.Open("sqlite", s.Target().DSN)
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	for _, pragma := range []string{"integrity_check", "quick_check"} {
		b.Run(pragma, func(b *testing.B) {
			for b.Loop() {
				var msg string
				require.NoError(b, db.QueryRow("PRAGMA main."+pragma).Scan(&msg))
				require.Equal(b, "ok", msg)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// streamPair is a projected store and a bare one (NoProjections) that a
// streaming benchmark feeds the same events, alternating, and times apart.
type streamPair struct {
	stores [2]*persistence.Store // projected, bare
	spent  [2]time.Duration
	events int
}

// appendBoth appends evs, in Appends of at most batch events, to both
// stores, the projected one first, and adds the time each took.
func (p *streamPair) appendBoth(b *testing.B, evs []orchestration.Event, batch int) {
	for i, s := range p.stores {
		start := time.Now()
		for rest := evs; len(rest) > 0; {
			k := min(batch, len(rest))
			if _, err := s.Append(context.Background(), nil, rest[:k]...); err != nil {
				b.Fatal(err)
			}
			rest = rest[k:]
		}
		p.spent[i] += time.Since(start)
	}
	p.events += len(evs)
}

// setupBoth appends evs to both stores, untimed.
func (p *streamPair) setupBoth(b *testing.B, evs []orchestration.Event) {
	for _, s := range p.stores {
		for rest := evs; len(rest) > 0; {
			k := min(500, len(rest))
			if _, err := s.Append(context.Background(), nil, rest[:k]...); err != nil {
				b.Fatal(err)
			}
			rest = rest[k:]
		}
	}
}

// report reports the events/s of each store and projected ÷ bare.
func (p *streamPair) report(b *testing.B) {
	proj := float64(p.events) / p.spent[0].Seconds()
	bare := float64(p.events) / p.spent[1].Seconds()
	b.ReportMetric(proj, "projected-events/s")
	b.ReportMetric(bare, "bare-events/s")
	b.ReportMetric(proj/bare, "projected/bare")
}

// BenchmarkStreamingProjection measures what the projection costs a
// streamed reply (issue 12), projected ÷ bare on one file database each,
// alternating event by event:
//
//   - delta/text=N: one 16-byte message.delta per Append to a message
//     that already holds N bytes (grown by 1 KB deltas); every 32 deltas
//     the message completes and a new one of N bytes takes over, untimed;
//   - added-unknown-turns: 10,000 message.added whose turns do not exist;
//   - deltas-interleaved: 10,000 deltas round-robin over 50 streaming
//     messages;
//
// the last two in Appends of 100 events.
func BenchmarkStreamingProjection(b *testing.B) {
	benchStreamingProjection(b, func(b *testing.B, opts *persistence.Options) *persistence.Store {
		s, err := persistence.OpenWith(context.Background(), dbtest.SQLiteFile(b), opts)
		require.NoError(b, err)
		return s
	})
}

func benchStreamingProjection(b *testing.B, open func(*testing.B, *persistence.Options) *persistence.Store) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	pair := func(b *testing.B) *streamPair {
		p := &streamPair{}
		for i, bare := range []bool{false, true} {
			p.stores[i] = open(b, &persistence.Options{NoProjections: bare})
			b.Cleanup(func() { p.stores[i].Close() })
		}
		p.setupBoth(b, []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: "p", Name: "bench", WorkspaceRoot: "/w", At: at},
			orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "bench", Model: "m", At: at},
			orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at},
		})
		return p
	}
	// message starts streaming message id with n bytes of text.
	message := func(id string, n int) []orchestration.Event {
		evs := []orchestration.Event{orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at}}
		for ; n > 0; n -= 1024 {
			evs = append(evs, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: id, Delta: strings.Repeat("x", min(n, 1024)), At: at})
		}
		return evs
	}
	for _, kb := range []int{1, 128, 512} {
		b.Run(fmt.Sprintf("delta/text=%dKB", kb), func(b *testing.B) {
			p := pair(b)
			i, msg := 0, ""
			for b.Loop() {
				if i%32 == 0 {
					if msg != "" {
						p.setupBoth(b, []orchestration.Event{orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: msg, At: at}})
					}
					msg = fmt.Sprint("m", i)
					p.setupBoth(b, message(msg, kb<<10))
				}
				p.appendBoth(b, []orchestration.Event{orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: msg, Delta: "sixteen bytes ok", At: at}}, 1)
				i++
			}
			p.report(b)
		})
	}
	b.Run("added-unknown-turns", func(b *testing.B) {
		p := pair(b)
		round := 0
		for b.Loop() {
			evs := make([]orchestration.Event, 10_000)
			for i := range evs {
				evs[i] = orchestration.MessageAdded{ThreadID: "t", TurnID: fmt.Sprint("gone", round, "-", i), MessageID: fmt.Sprint("a", round, "-", i), Role: orchestration.RoleUser, Text: "hello", At: at}
			}
			p.appendBoth(b, evs, 100)
			round++
		}
		p.report(b)
	})
	b.Run("deltas-interleaved", func(b *testing.B) {
		p := pair(b)
		round := 0
		for b.Loop() {
			var setup []orchestration.Event
			for m := range 50 {
				setup = append(setup, message(fmt.Sprint("r", round, "-", m), 0)...)
			}
			p.setupBoth(b, setup)
			evs := make([]orchestration.Event, 10_000)
			for i := range evs {
				evs[i] = orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: fmt.Sprint("r", round, "-", i%50), Delta: fmt.Sprintf("token%d ", i), At: at}
			}
			p.appendBoth(b, evs, 100)
			round++
		}
		p.report(b)
	})
}
