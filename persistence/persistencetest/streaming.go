package persistencetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// liveText returns the text of message id as the view
// projection_messages_live shows it to a SQL shell, and whether the
// message is streaming.
func liveText(t *testing.T, s *setup, id string) (string, bool) {
	t.Helper()
	rows, err := s.store.Client().QueryContext(s.ctx,
		"SELECT text, streaming FROM projection_messages_live WHERE message_id = '"+strings.ReplaceAll(id, "'", "''")+"'")
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next(), "no message %s in projection_messages_live: %v", id, rows.Err())
	var text string
	var streaming bool
	require.NoError(t, rows.Scan(&text, &streaming))
	return text, streaming
}

// readerMessage returns message id of thread as projection.Reader shows it.
func readerMessage(t *testing.T, s *setup, thread, id string) projection.Message {
	t.Helper()
	d, err := projection.NewReader(s.store).Thread(s.ctx, thread)
	require.NoError(t, err)
	for _, u := range d.Turns {
		for _, m := range u.Messages {
			if m.ID == id {
				return m
			}
		}
	}
	t.Fatalf("no message %s in thread %s", id, thread)
	return projection.Message{}
}

func runStreaming(t *testing.T, h Harness) {
	// streamed sets up a project, a thread t and a turn u.
	streamed := func(t *testing.T) *setup {
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
			orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(0)},
			orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at(0)})
		require.NoError(t, err)
		return s
	}
	delta := func(msg string, i int) orchestration.MessageDelta {
		return orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: msg, Delta: fmt.Sprintf("tok%d ", i), At: at(10 + i)}
	}

	t.Run("ReadersSeeEveryDelta", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Text: "> ", Streaming: true, At: at(1)})
		require.NoError(t, err)
		want := "> "
		for i := range 40 {
			// One delta per Append, then runs of several, as a reply
			// arrives and as a group commit batches it.
			var evs []orchestration.Event
			for k := range 1 + i%4 {
				d := delta("m", 10*i+k)
				evs = append(evs, d)
				want += d.Delta
			}
			recs, err := s.store.Append(s.ctx, nil, evs...)
			require.NoError(t, err)
			text, streaming := liveText(t, s, "m")
			require.True(t, streaming)
			require.Equal(t, want, text, "the view after delta %d", i)
			m := readerMessage(t, s, "t", "m")
			require.Equal(t, want, m.Text, "the reader after delta %d", i)
			require.True(t, m.Streaming)
			require.Equal(t, recs[len(recs)-1].Sequence, m.LastSequence, "the reader's last_sequence")
		}
		requireVerified(t, s)
		before := readViews(t, s)
		mustRebuild(t, s, nil)
		require.Equal(t, before, readViews(t, s), "a rebuild of a streaming message")
	})

	t.Run("CompletionFolds", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		evs := []orchestration.Event{
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "a", Role: orchestration.RoleAssistant, Streaming: true, At: at(1)},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "b", Role: orchestration.RoleAssistant, Streaming: true, At: at(2)},
		}
		want := map[string]string{}
		for i := range 300 {
			msg := []string{"a", "b"}[i%2]
			d := delta(msg, i)
			evs = append(evs, d)
			want[msg] += d.Delta
		}
		evs = append(evs, orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "a", At: at(400)},
			delta("a", 401)) // after its completion: ignored
		for len(evs) > 0 {
			n := min(len(evs), 7)
			_, err := s.store.Append(s.ctx, nil, evs[:n]...)
			require.NoError(t, err)
			evs = evs[n:]
		}
		text, streaming := liveText(t, s, "a")
		require.False(t, streaming)
		require.Equal(t, want["a"], text)
		var stored string
		rows, err := s.store.Client().QueryContext(s.ctx, "SELECT text FROM projection_messages WHERE message_id = 'a'")
		require.NoError(t, err)
		require.True(t, rows.Next())
		require.NoError(t, rows.Scan(&stored))
		require.NoError(t, rows.Close())
		require.Equal(t, want["a"], stored, "the completion folded the deltas into text")
		// b never completes: every reader has its text from the log.
		text, streaming = liveText(t, s, "b")
		require.True(t, streaming)
		require.Equal(t, want["b"], text)
		require.Equal(t, want["b"], readerMessage(t, s, "t", "b").Text)
		requireVerified(t, s)
		before := readViews(t, s)
		mustRebuild(t, s, nil)
		require.Equal(t, before, readViews(t, s))
		require.Equal(t, want["b"], readerMessage(t, s, "t", "b").Text)
	})

	t.Run("VerifySeesAnAlteredFold", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		_, err := s.store.Append(s.ctx, nil, Deltas("t", 5)...)
		require.NoError(t, err)
		_, err = s.store.Append(s.ctx, nil, orchestration.MessageCompleted{ThreadID: "t", TurnID: "t-turn", MessageID: "t-msg", At: at(99)})
		require.NoError(t, err)
		text, streaming := liveText(t, s, "t-msg")
		require.False(t, streaming)
		require.Equal(t, "token 0 token 1 token 2 token 3 token 4 ", text)
		requireVerified(t, s)
		res, err := s.store.Client().ExecContext(s.ctx, "UPDATE projection_messages SET text = replace(text, 'token 3 ', '')")
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		rep, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.False(t, rep.OK())
		require.Contains(t, fmt.Sprint(rep.Problems), "projection_messages")
		mustRebuild(t, s, nil)
		requireVerified(t, s)
	})

	t.Run("DeltasKeepEveryCharacter", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		// What JSON escapes, what Go's encoder escapes besides (<, >, &,
		// U+2028), and what it does not: each engine reads the text back
		// out of the payload as the store wrote it.
		parts := []string{"\"quoted\" ", `back\slash `, "tab\tnew\nline\r ", "<b>&amp;</b> ", "\u2028\u2029 ",
			"\x01\x1f ", "héllo wörld ", "日本語 ", "🦀🎉 ", "' OR 1=1 -- ", "%_ ", "\u00a0end"}
		evs := []orchestration.Event{orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Text: "é:", Streaming: true, At: at(1)}}
		want := "é:"
		for i, p := range parts {
			evs = append(evs, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: p, At: at(2 + i)})
			want += p
		}
		_, err := s.store.Append(s.ctx, nil, evs...)
		require.NoError(t, err)
		text, _ := liveText(t, s, "m")
		require.Equal(t, want, text, "the view")
		require.Equal(t, want, readerMessage(t, s, "t", "m").Text, "the reader")
		_, err = s.store.Append(s.ctx, nil, orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "m", At: at(99)})
		require.NoError(t, err)
		text, streaming := liveText(t, s, "m")
		require.False(t, streaming)
		require.Equal(t, want, text, "the folded text")
		require.Equal(t, want, readerMessage(t, s, "t", "m").Text)
		requireVerified(t, s)
	})

	t.Run("EachMessageHasItsOwnDeltas", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "t2", Model: "m", At: at(0)},
			orchestration.TurnStarted{ThreadID: "t2", TurnID: "u2", At: at(0)},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "a", Role: orchestration.RoleAssistant, Streaming: true, At: at(1)},
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "u2", MessageID: "b", Role: orchestration.RoleAssistant, Streaming: true, At: at(1)})
		require.NoError(t, err)
		// Deltas of two threads interleaved, and deltas that name a
		// message with another turn or thread than its own: ignored.
		var last int64
		for i := range 20 {
			recs, err := s.store.Append(s.ctx, nil,
				orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: fmt.Sprint("a", i, " "), At: at(10 + i)},
				orchestration.MessageDelta{ThreadID: "t2", TurnID: "u2", MessageID: "b", Delta: fmt.Sprint("b", i, " "), At: at(10 + i)},
				orchestration.MessageDelta{ThreadID: "t2", TurnID: "u2", MessageID: "a", Delta: "wrong thread ", At: at(10 + i)},
				orchestration.MessageDelta{ThreadID: "t", TurnID: "u2", MessageID: "a", Delta: "wrong turn ", At: at(10 + i)})
			require.NoError(t, err)
			last = recs[0].Sequence
		}
		var wantA, wantB string
		for i := range 20 {
			wantA += fmt.Sprint("a", i, " ")
			wantB += fmt.Sprint("b", i, " ")
		}
		text, _ := liveText(t, s, "a")
		require.Equal(t, wantA, text)
		text, _ = liveText(t, s, "b")
		require.Equal(t, wantB, text)
		ma := readerMessage(t, s, "t", "a")
		require.Equal(t, wantA, ma.Text)
		require.Equal(t, last, ma.LastSequence, "the last delta of a, not a later one that names it wrongly")
		require.WithinDuration(t, at(29), ma.UpdatedAt, time.Microsecond, "updated_at") // PostgreSQL keeps µs
		require.Equal(t, wantB, readerMessage(t, s, "t2", "b").Text)
		requireVerified(t, s)
		before := readViews(t, s)
		mustRebuild(t, s, nil)
		require.Equal(t, before, readViews(t, s))
	})

	t.Run("AKeptReaderReadsOnlyNewDeltas", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "a", Role: orchestration.RoleAssistant, Text: "a:", Streaming: true, At: at(1)},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "b", Role: orchestration.RoleAssistant, Streaming: true, At: at(1)})
		require.NoError(t, err)
		// kept remembers what it read; each of its reads must show what a
		// new Reader and the view show.
		kept := projection.NewReader(s.store)
		same := func(round int) {
			t.Helper()
			d, err := kept.Thread(s.ctx, "t")
			require.NoError(t, err)
			fresh, err := projection.NewReader(s.store).Thread(s.ctx, "t")
			require.NoError(t, err)
			require.Equal(t, fresh, d, "round %d: a kept Reader against a new one", round)
			for _, m := range d.Turns[0].Messages {
				text, _ := liveText(t, s, m.ID)
				require.Equal(t, text, m.Text, "round %d: message %s against the view", round, m.ID)
			}
		}
		same(-1)
		for i := range 12 {
			evs := []orchestration.Event{
				orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: fmt.Sprint("a", i, " "), At: at(10 + i)},
				orchestration.MessageDelta{ThreadID: "t", TurnID: "u2", MessageID: "a", Delta: "wrong turn ", At: at(10 + i)},
			}
			if i%3 != 1 { // b gets no delta in some rounds
				evs = append(evs, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "b", Delta: fmt.Sprint("b", i, " "), At: at(10 + i)})
			}
			if i%4 == 3 { // and some rounds append nothing to either
				evs = evs[1:2]
			}
			_, err := s.store.Append(s.ctx, nil, evs...)
			require.NoError(t, err)
			same(i)
			if i == 6 {
				_, err := s.store.Append(s.ctx, nil, orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "b", At: at(50)})
				require.NoError(t, err)
				same(i)
			}
		}
		// A rebuild gives the rows back as they were: what kept remembers
		// still holds.
		mustRebuild(t, s, nil)
		_, err = s.store.Append(s.ctx, nil, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "after ", At: at(60)})
		require.NoError(t, err)
		same(99)
		require.Equal(t, "a:a0 a1 a2 a4 a5 a6 a8 a9 a10 after ", readerMessage(t, s, "t", "a").Text)

		// Thread t pruned while a streams, and a message of the same id
		// added in another thread: kept must not build on the old one.
		_, err = s.store.Append(s.ctx, nil, orchestration.ThreadArchived{ThreadID: "t", At: at(70)})
		require.NoError(t, err)
		_, err = s.store.Prune(s.ctx, &persistence.PruneOpts{ArchivedBefore: at(71)})
		require.NoError(t, err)
		_, err = s.store.Append(s.ctx, nil,
			orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "t2", Model: "m", At: at(80)},
			orchestration.TurnStarted{ThreadID: "t2", TurnID: "u", At: at(80)},
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "u", MessageID: "a", Role: orchestration.RoleAssistant, Streaming: true, At: at(80)})
		require.NoError(t, err)
		for i := range 30 { // past the version kept remembers of the old a
			_, err = s.store.Append(s.ctx, nil, orchestration.MessageDelta{ThreadID: "t2", TurnID: "u", MessageID: "a", Delta: fmt.Sprint(i, " "), At: at(81)})
			require.NoError(t, err)
		}
		d, err := kept.Thread(s.ctx, "t2")
		require.NoError(t, err)
		fresh, err := projection.NewReader(s.store).Thread(s.ctx, "t2")
		require.NoError(t, err)
		require.Equal(t, fresh, d, "a kept Reader against a new one, after a prune")
	})

	t.Run("MissingParentsChangeNothing", func(t *testing.T) {
		t.Parallel()
		s := streamed(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.MessageAdded{ThreadID: "t", TurnID: "gone", MessageID: "x", Role: orchestration.RoleUser, Text: "q", At: at(1)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "nowhere", Delta: "d", At: at(2)},
			orchestration.TurnStarted{ThreadID: "gone", TurnID: "v", At: at(3)},
			orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "gone", Title: "t", Model: "m", At: at(4)},
			orchestration.CheckpointCreated{ThreadID: "t", TurnID: "gone", GitRef: "r", Message: "c", At: at(5)},
			orchestration.CheckpointReverted{ThreadID: "t", GitRef: "r", At: at(6)},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "s", Role: orchestration.RoleAssistant, Streaming: true, At: at(7)},
			delta("s", 1),
			// A completion that names another turn completes nothing.
			orchestration.MessageCompleted{ThreadID: "t", TurnID: "gone", MessageID: "s", At: at(8)})
		require.NoError(t, err)
		v := readViews(t, s)
		require.Len(t, v.Threads, 1)
		require.Equal(t, 1, v.Threads[0].MessageCount)
		require.Equal(t, 1, v.Threads[0].TurnCount)
		require.Len(t, v.Details[0].Turns, 1)
		require.Len(t, v.Details[0].Turns[0].Messages, 1)
		require.Empty(t, v.Details[0].Checkpoints)
		text, streaming := liveText(t, s, "s")
		require.True(t, streaming)
		require.Equal(t, delta("s", 1).Delta, text)
		requireVerified(t, s)
	})
}
