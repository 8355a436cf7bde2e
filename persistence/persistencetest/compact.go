package persistencetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/ent/checkpoint"
	"github.com/peonhq/peon/ent/message"
	"github.com/peonhq/peon/ent/project"
	"github.com/peonhq/peon/ent/setting"
	"github.com/peonhq/peon/ent/thread"
	"github.com/peonhq/peon/ent/turn"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// compactSession returns a random session cut into appends: threads
// whose turns stream messages as deltas, interleaved, some completed and
// some not, mixed with RandomEvents over the same ids (non-streaming
// messages, deltas of other turns, repeats), each append with a command
// id or none.
func compactSession(rng *rand.Rand, n int) []appendCall {
	evs := []orchestration.Event{orchestration.ProjectCreated{ProjectID: "p0", Name: "p", WorkspaceRoot: "/w", At: at(0)}}
	type msg struct{ thread, turn, id string }
	turns := map[string]string{}
	for i := range 4 {
		th := fmt.Sprintf("t%d", i)
		evs = append(evs, orchestration.ThreadCreated{ThreadID: th, ProjectID: "p0", Title: th, Model: "m", At: at(i)})
		turns[th] = fmt.Sprintf("u%d", i)
		evs = append(evs, orchestration.TurnStarted{ThreadID: th, TurnID: turns[th], At: at(i)})
	}
	var active []msg
	next := 0
	for i := range n {
		when := at(10 + i)
		th := fmt.Sprintf("t%d", rng.IntN(4))
		switch r := rng.IntN(12); {
		case r < 6 && len(active) > 0:
			m := active[rng.IntN(len(active))]
			evs = append(evs, orchestration.MessageDelta{ThreadID: m.thread, TurnID: m.turn, MessageID: m.id, Delta: fmt.Sprintf("δ%d·", i), At: when})
		case r < 7:
			m := msg{th, turns[th], fmt.Sprintf("m%d", next%40)}
			next++
			evs = append(evs, orchestration.MessageAdded{ThreadID: m.thread, TurnID: m.turn, MessageID: m.id,
				Role: orchestration.RoleAssistant, Text: "≫", Streaming: rng.IntN(8) > 0, At: when})
			active = append(active, m)
		case r < 8 && len(active) > 0:
			k := rng.IntN(len(active))
			m := active[k]
			evs = append(evs, orchestration.MessageCompleted{ThreadID: m.thread, TurnID: m.turn, MessageID: m.id, At: when})
			if rng.IntN(4) > 0 {
				active = slices.Delete(active, k, k+1)
			}
		case r < 9 && rng.IntN(3) == 0:
			// A message added before its turn starts (the projector
			// ignores it: its deltas apply to no row), then the turn
			// started and the message added again (now it streams).
			late := msg{th, fmt.Sprintf("late%d", i), fmt.Sprintf("m%d", next%40)}
			next++
			added := orchestration.MessageAdded{ThreadID: late.thread, TurnID: late.turn, MessageID: late.id,
				Role: orchestration.RoleAssistant, Streaming: true, At: when}
			evs = append(evs, added,
				orchestration.MessageDelta{ThreadID: late.thread, TurnID: late.turn, MessageID: late.id, Delta: "early·", At: when},
				orchestration.TurnStarted{ThreadID: th, TurnID: late.turn, At: when}, added)
			turns[th] = late.turn
			active = append(active, late)
		case r < 9:
			turns[th] = fmt.Sprintf("u%d", rng.IntN(8))
			evs = append(evs, orchestration.TurnStarted{ThreadID: th, TurnID: turns[th], At: when})
		default:
			evs = append(evs, RandomEvents(rng, 1)...)
		}
	}
	var calls []appendCall
	for len(evs) > 0 {
		k := min(len(evs), 1+rng.IntN(8))
		c := appendCall{events: evs[:k]}
		if rng.IntN(2) == 0 {
			c.command = fmt.Sprintf("cmd-%d", len(calls))
		}
		calls = append(calls, c)
		evs = evs[k:]
	}
	return calls
}

type appendCall struct {
	events  []orchestration.Event
	command string
}

// dumpTables returns every row of every projection table, all columns
// as ent prints them (but a checkpoint's surrogate id, which a rebuild
// renumbers), in key order.
func dumpTables(t *testing.T, s *setup) []string {
	t.Helper()
	c := s.store.Client()
	var out []string
	add := func(rows []string, err error) {
		require.NoError(t, err)
		out = append(out, rows...)
	}
	add(stringsOf(c.Project.Query().Order(project.ByID()).All(s.ctx)))
	add(stringsOf(c.Thread.Query().Order(thread.ByID()).All(s.ctx)))
	add(stringsOf(c.Turn.Query().Order(turn.ByID()).All(s.ctx)))
	add(stringsOf(c.Message.Query().Order(message.ByID()).All(s.ctx)))
	add(stringsOf(c.Setting.Query().Order(setting.ByID()).All(s.ctx)))
	cps, err := stringsOf(c.Checkpoint.Query().Order(checkpoint.ByThreadID(), checkpoint.ByTurnID()).All(s.ctx))
	for i := range cps {
		cps[i] = surrogateID.ReplaceAllString(cps[i], "")
	}
	add(cps, err)
	return out
}

var surrogateID = regexp.MustCompile(`^Checkpoint\(id=\d+, `)

func stringsOf[T fmt.Stringer](rows []T, err error) ([]string, error) {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.String()
	}
	return out, err
}

func runCompact(t *testing.T, h Harness) {
	t.Run("CommandsVersionsAndSubscribers", func(t *testing.T) { compactCommands(t, h) })
	t.Run("MessageAddedTwice", func(t *testing.T) { compactAddedTwice(t, h) })
	t.Run("PropertyProjectionsUnchanged", func(t *testing.T) {
		t.Parallel()
		for seed := range uint64(6) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				compactProperty(t, h, seed)
			})
		}
	})
}

// compactAddedTwice compacts messages whose message.added comes twice
// before their completion, with deltas before, between and after: once
// where the first names a turn not started yet (the projector ignores
// it, and the deltas before the second apply to no row), once where the
// second repeats the first (ignored: every delta applies). Compaction,
// and a rebuild after it, leave the text as the projector made it.
func compactAddedTwice(t *testing.T, h Harness) {
	t.Parallel()
	s := h.setup(t)
	add := func(id, turn string) orchestration.Event {
		return orchestration.MessageAdded{ThreadID: "t", TurnID: turn, MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at(1)}
	}
	d := func(id, turn, text string) orchestration.Event {
		return orchestration.MessageDelta{ThreadID: "t", TurnID: turn, MessageID: id, Delta: text, At: at(2)}
	}
	done := func(id, turn string) orchestration.Event {
		return orchestration.MessageCompleted{ThreadID: "t", TurnID: turn, MessageID: id, At: at(3)}
	}
	evs := []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(0)},
		// late: added before its turn starts, and again after.
		add("late", "v"), d("late", "v", "pre "), d("late", "v", "pre2 "),
		orchestration.TurnStarted{ThreadID: "t", TurnID: "v", At: at(1)},
		add("late", "v"), d("late", "v", "a"), d("late", "v", "b"), done("late", "v"),
		// again: added twice to a turn that exists.
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at(1)},
		add("again", "u"), d("again", "u", "x"), d("again", "u", "y"), add("again", "u"), d("again", "u", "z"), d("again", "u", "w"), done("again", "u"),
	}
	for _, e := range evs { // one Append each, as agents stream
		_, err := s.store.Append(s.ctx, nil, e)
		require.NoError(t, err)
	}
	text := func(id string) string {
		m, err := s.store.Client().Message.Get(s.ctx, id)
		require.NoError(t, err)
		return m.Text
	}
	require.Equal(t, "ab", text("late"))
	require.Equal(t, "xyzw", text("again"))
	before := dumpTables(t, s)
	rep, err := s.store.Compact(s.ctx, &persistence.CompactOpts{Until: int64(len(evs))})
	require.NoError(t, err)
	require.Positive(t, rep.Events, "something folds")
	require.Equal(t, before, dumpTables(t, s), "compaction changed a projection")
	requireVerified(t, s)
	mustRebuild(t, s, nil)
	require.Equal(t, "ab", text("late"), "after compaction and a rebuild")
	require.Equal(t, "xyzw", text("again"), "after compaction and a rebuild")
	require.Equal(t, before, dumpTables(t, s))
}

// compactCommands checks idempotency, expected versions and a subscriber
// at the head across a compaction.
func compactCommands(t *testing.T, h Harness) {
	t.Parallel()
	s := h.setup(t)
	th, tu, m := "t1", "u1", "m1"
	delta := func(text string) orchestration.Event {
		return orchestration.MessageDelta{ThreadID: th, TurnID: tu, MessageID: m, Delta: text, At: at(3)}
	}
	appendCmd := func(cmd string, evs ...orchestration.Event) ([]persistence.Recorded, error) {
		return s.store.Append(s.ctx, &persistence.AppendOpts{CommandID: cmd}, evs...)
	}
	_, err := appendCmd("open",
		orchestration.ThreadCreated{ThreadID: th, ProjectID: "p", Title: "x", Model: "m", At: at(0)},
		orchestration.TurnStarted{ThreadID: th, TurnID: tu, At: at(1)},
		orchestration.MessageAdded{ThreadID: th, TurnID: tu, MessageID: m, Role: orchestration.RoleAssistant, Streaming: true, At: at(2)},
		delta("a"))
	require.NoError(t, err)
	_, err = appendCmd("middle", delta("b"), delta("c")) // both folded away
	require.NoError(t, err)
	_, err = appendCmd("close", delta("d"), orchestration.MessageCompleted{ThreadID: th, TurnID: tu, MessageID: m, At: at(4)})
	require.NoError(t, err)
	head, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	version, err := s.store.StreamVersion(s.ctx, "thread:"+th)
	require.NoError(t, err)

	// A subscriber at the head while the log is compacted.
	sub := make(chan persistence.Recorded, 8)
	subCtx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		for rec, err := range s.store.Subscribe(subCtx, head) {
			if err == nil {
				sub <- rec
			}
		}
	}()

	rep, err := s.store.Compact(s.ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 3, rep.Events)
	requireVerified(t, s)
	got, err := s.store.StreamVersion(s.ctx, "thread:"+th)
	require.NoError(t, err)
	require.Equal(t, version, got, "a stream's version does not change")

	for _, cmd := range []struct {
		id  string
		evs []orchestration.Event
	}{{"middle", []orchestration.Event{delta("b"), delta("c")}}, {"close", []orchestration.Event{delta("d"), orchestration.MessageCompleted{ThreadID: th, TurnID: tu, MessageID: m, At: at(5)}}}} {
		_, err := appendCmd(cmd.id, cmd.evs...)
		require.NoError(t, err, "command %s, folded, is still stored", cmd.id)
	}
	_, err = appendCmd("middle", delta("b"))
	require.ErrorIs(t, err, persistence.ErrCommandConflict, "a folded command with other events is a conflict")
	h2, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	require.Equal(t, head, h2, "no repeat appended")

	recs, err := s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:" + th: version}},
		orchestration.ThreadRenamed{ThreadID: th, Title: "y", At: at(6)})
	require.NoError(t, err, "ExpectedVersions compare with the current version")
	select {
	case rec := <-sub:
		require.Equal(t, recs[0].Sequence, rec.Sequence, "the subscriber at the head sees only the new event")
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber at the head got nothing")
	}
	require.Empty(t, sub)
}

func compactProperty(t *testing.T, h Harness, seed uint64) {
	s := h.setup(t)
	rng := rand.New(rand.NewPCG(seed, 13))
	calls := compactSession(rng, 300*h.Large)
	var cmdCalls []appendCall
	for _, c := range calls {
		var opts *persistence.AppendOpts
		if c.command != "" {
			opts = &persistence.AppendOpts{CommandID: c.command}
			cmdCalls = append(cmdCalls, c)
		}
		_, err := s.store.Append(s.ctx, opts, c.events...)
		require.NoError(t, err)
	}
	head, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	until := head / 2
	if seed%3 == 0 {
		until = 0 // the default horizon: every fixture time is old
	}
	before := dumpTables(t, s)
	versions := streamVersions(t, s)
	var tail []persistence.Recorded
	for rec, err := range s.store.ReplayFrom(s.ctx, until+1) {
		require.NoError(t, err)
		tail = append(tail, rec)
	}
	st, err := s.store.Stats(s.ctx)
	require.NoError(t, err)

	rep, err := s.store.Compact(s.ctx, &persistence.CompactOpts{Until: until})
	require.NoError(t, err)
	t.Logf("head %d, until %d: folded %d messages, removed %d events", head, until, rep.Messages, rep.Events)
	require.Positive(t, rep.Events, "the session has deltas to fold")
	if until == 0 {
		require.Equal(t, st.Compaction.Events, rep.Events, "Stats counted what Compact removes")
		require.Equal(t, st.Compaction.Messages, rep.Messages)
	}
	after, err := s.store.Stats(s.ctx)
	require.NoError(t, err)
	require.Equal(t, st.Events-rep.Events, after.Events)

	require.Equal(t, before, dumpTables(t, s), "compaction changed a projection")
	require.Equal(t, versions, streamVersions(t, s), "compaction changed a stream's version")
	if until > 0 {
		var got []persistence.Recorded
		for rec, err := range s.store.ReplayFrom(s.ctx, until+1) {
			require.NoError(t, err)
			got = append(got, rec)
		}
		require.Equal(t, len(tail), len(got), "the history after the horizon changed")
		for i := range got {
			require.Equal(t, tail[i].Payload, got[i].Payload, "the history after the horizon changed")
		}
	}
	requireVerified(t, s)
	compactRoundTrip(t, h, s, before)
	var lastDone, lastTotal int64
	res := mustRebuild(t, s, &persistence.RebuildOpts{Progress: func(done, total int64) { lastDone, lastTotal = done, total }})
	require.Zero(t, res.Missing)
	require.Equal(t, lastTotal, lastDone, "the last progress call has done == total")
	require.Equal(t, st.Events-rep.Events, lastTotal, "the total is the events the log holds")
	require.Equal(t, before, dumpTables(t, s), "a rebuild after compaction gives other tables")
	requireVerified(t, s)

	// Every command is still stored: repeating it appends nothing.
	for _, c := range cmdCalls {
		_, err := s.store.Append(s.ctx, &persistence.AppendOpts{CommandID: c.command}, c.events...)
		require.NoError(t, err, "command %s", c.command)
	}
	h2, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	require.Equal(t, head, h2, "a repeated command appended again")
	again, err := s.store.Compact(s.ctx, &persistence.CompactOpts{Until: until})
	require.NoError(t, err)
	require.Zero(t, again.Events, "a second compaction finds nothing to fold")
}

func streamVersions(t *testing.T, s *setup) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for rec, err := range s.store.ReplayAll(s.ctx) {
		require.NoError(t, err)
		out[rec.StreamID] = max(out[rec.StreamID], rec.StreamVersion)
	}
	return out
}

// compactRoundTrip exports the compacted store, imports it into an empty
// one, which is sound with the same tables, and exports it again, byte
// for byte; without its gap records the export does not import.
func compactRoundTrip(t *testing.T, h Harness, s *setup, tables []string) {
	t.Helper()
	var out bytes.Buffer
	_, err := s.store.Export(s.ctx, &out, nil)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(out.Bytes(), []byte(`{"compaction":{"first_sequence":`)), "the gaps come first")

	empty := h.setup(t)
	_, err = empty.store.Import(empty.ctx, bytes.NewReader(out.Bytes()), nil)
	require.NoError(t, err)
	requireVerified(t, empty)
	require.Equal(t, tables, dumpTables(t, empty))
	var again bytes.Buffer
	_, err = empty.store.Export(empty.ctx, &again, nil)
	require.NoError(t, err)
	require.Equal(t, out.String(), again.String(), "a compacted store re-exports byte for byte")

	// The first compaction line dropped: its gap is not declared.
	_, rest, ok := bytes.Cut(out.Bytes(), []byte("\n"))
	require.True(t, ok)
	other := h.setup(t)
	_, err = other.store.Import(other.ctx, bytes.NewReader(rest), nil)
	require.ErrorContains(t, err, "gap")
}
