package projection

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestStreamedHoldsToTheSnapshot reads a streaming message in a snapshot
// taken before more deltas were appended, after a later read remembered
// them: the older read must show only the deltas of its snapshot, and
// the remembered text must not go back.
func TestStreamedHoldsToTheSnapshot(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": dbtest.SQLiteFile, "postgres": dbtest.PostgresSchema} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store, err := persistence.Open(ctx, dsn(t))
			require.NoError(t, err)
			t.Cleanup(func() { store.Close() })
			at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
			delta := func(i int) orchestration.Event {
				return orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: fmt.Sprint(i, " "), At: at}
			}
			evs := []orchestration.Event{
				orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
				orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at},
				orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at},
				orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Streaming: true, At: at},
				delta(0), delta(1),
			}
			_, err = store.Append(ctx, nil, evs...)
			require.NoError(t, err)
			r := NewReader(store)
			text := func(d ThreadDetail) string { return d.Turns[0].Messages[0].Text }
			d, err := r.Thread(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, "0 1 ", text(d))

			// The old snapshot: a read-only transaction that has read.
			old, err := store.Client().BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
			require.NoError(t, err)
			defer old.Rollback() //nolint:errcheck // read-only
			_, err = old.Client().Thread.Get(ctx, "t")
			require.NoError(t, err)

			_, err = store.Append(ctx, nil, delta(2), delta(3))
			require.NoError(t, err)
			d, err = r.Thread(ctx, "t") // remembers 0 to 3
			require.NoError(t, err)
			require.Equal(t, "0 1 2 3 ", text(d))
			known, ok := r.streamed.get(&ent.Message{ID: "m", AddedSequence: 4}) // the message.added is the 4th event
			require.True(t, ok, "the Reader remembers the message")
			require.Equal(t, "0 1 2 3 ", known.text)

			d, err = r.threadDetail(ctx, old.Client(), "t")
			require.NoError(t, err)
			require.Equal(t, "0 1 ", text(d), "a read in the older snapshot")
			require.NoError(t, old.Rollback())

			_, err = store.Append(ctx, nil, delta(4))
			require.NoError(t, err)
			d, err = r.Thread(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, "0 1 2 3 4 ", text(d))
			require.Equal(t, int64(len(evs)+3), d.Turns[0].Messages[0].LastSequence)
		})
	}
}

// TestStreamedIsBounded fills a Reader's memory of streaming messages
// past its bounds.
func TestStreamedIsBounded(t *testing.T) {
	t.Parallel()
	var s streamed
	msg := func(i int) *ent.Message { return &ent.Message{ID: fmt.Sprint("m", i), AddedSequence: int64(i)} }
	for i := range 2 * maxStreamed {
		s.put(msg(i), pendingText{text: "x", version: 1})
	}
	require.Len(t, s.m, maxStreamed)
	require.Equal(t, maxStreamed, s.bytes)
	big := strings.Repeat("y", maxStreamedBytes/8)
	for i := range 16 {
		s.put(msg(10_000+i), pendingText{text: big, version: 1})
	}
	require.LessOrEqual(t, s.bytes, maxStreamedBytes)
	sum := 0
	for _, e := range s.m {
		sum += len(e.p.text)
	}
	require.Equal(t, sum, s.bytes, "bytes counts what is held")
	// A message too large to share the room is not held at all.
	s.put(msg(20_000), pendingText{text: strings.Repeat("z", maxStreamedBytes/2), version: 1})
	_, ok := s.get(msg(20_000))
	require.False(t, ok)
	// An older read does not replace a newer one.
	m := msg(10_015)
	s.put(m, pendingText{text: "older", version: 0})
	p, ok := s.get(m)
	require.True(t, ok)
	require.Equal(t, big, p.text)
}
