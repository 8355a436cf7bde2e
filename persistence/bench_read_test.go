package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// BenchmarkStreamingRead measures what a streaming message costs its
// readers and its completion, after n deltas of 16 bytes, one Append
// each, as an agent streams a reply: per iteration one
// projection.Reader.Thread of its thread by a new Reader (thread-read-us),
// one SELECT of its text from the view projection_messages_live
// (view-us), and, as a UI that keeps its Reader reads while the reply
// streams, one more delta appended and the thread read again by a Reader
// that read it before (poll-us, the read alone); after the loop, once,
// the Append of its message.completed, which folds the text
// (complete-us).
func BenchmarkStreamingRead(b *testing.B) {
	benchStreamingRead(b, func(b *testing.B) *persistence.Store {
		s, err := persistence.Open(context.Background(), dbtest.SQLiteFile(b))
		require.NoError(b, err)
		return s
	})
}

// BenchmarkPostgresStreamingRead is BenchmarkStreamingRead on PostgreSQL.
func BenchmarkPostgresStreamingRead(b *testing.B) {
	benchStreamingRead(b, func(b *testing.B) *persistence.Store {
		s, err := persistence.Open(context.Background(), dbtest.PostgresSchema(b))
		require.NoError(b, err)
		return s
	})
}

func benchStreamingRead(b *testing.B, open func(*testing.B) *persistence.Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	const delta = "sixteen bytes ok"
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("deltas=%d", n), func(b *testing.B) {
			s := open(b)
			defer s.Close()
			_, err := s.Append(ctx, nil,
				orchestration.ProjectCreated{ProjectID: "p", Name: "bench", WorkspaceRoot: "/w", At: at},
				orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "bench", Model: "m", At: at},
				orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at},
				orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Streaming: true, At: at})
			require.NoError(b, err)
			for range n {
				_, err := s.Append(ctx, nil, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: delta, At: at})
				require.NoError(b, err)
			}
			stored := n // the deltas appended so far
			kept := projection.NewReader(s)
			_, err = kept.Thread(ctx, "t")
			require.NoError(b, err)
			var read, view, poll time.Duration
			for b.Loop() {
				start := time.Now()
				d, err := projection.NewReader(s).Thread(ctx, "t")
				read += time.Since(start)
				require.NoError(b, err)
				require.Len(b, d.Turns[0].Messages[0].Text, stored*len(delta))
				stored++
				_, err = s.Append(ctx, nil, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: delta, At: at})
				require.NoError(b, err)
				start = time.Now()
				d, err = kept.Thread(ctx, "t")
				poll += time.Since(start)
				require.NoError(b, err)
				require.Len(b, d.Turns[0].Messages[0].Text, stored*len(delta))
				start = time.Now()
				rows, err := s.Client().QueryContext(ctx, "SELECT text FROM projection_messages_live WHERE message_id = 'm'")
				require.NoError(b, err)
				var text string
				require.True(b, rows.Next())
				require.NoError(b, rows.Scan(&text))
				require.NoError(b, rows.Close())
				view += time.Since(start)
				require.Len(b, text, stored*len(delta))
			}
			start := time.Now()
			_, err = s.Append(ctx, nil, orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "m", At: at})
			complete := time.Since(start)
			require.NoError(b, err)
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
			b.ReportMetric(us(read)/float64(b.N), "thread-read-us")
			b.ReportMetric(us(view)/float64(b.N), "view-us")
			b.ReportMetric(us(poll)/float64(b.N), "poll-us")
			b.ReportMetric(us(complete), "complete-us")
		})
	}
}
