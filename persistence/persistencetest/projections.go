package persistencetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// views is everything the read models show, for before/after comparisons.
type views struct {
	Projects []projection.Project
	Threads  []projection.Thread
	Details  []projection.ThreadDetail
	Settings []projection.Setting
}

func readViews(t *testing.T, s *setup) views {
	t.Helper()
	r := projection.NewReader(s.store)
	var v views
	var err error
	v.Projects, err = r.Projects(s.ctx, &projection.ProjectFilter{IncludeDeleted: true})
	require.NoError(t, err)
	v.Threads, err = r.Threads(s.ctx, &projection.ThreadFilter{IncludeArchived: true, IncludeDeleted: true})
	require.NoError(t, err)
	for _, th := range v.Threads {
		d, err := r.Thread(s.ctx, th.ID)
		require.NoError(t, err)
		v.Details = append(v.Details, d)
	}
	v.Settings, err = r.Settings(s.ctx)
	require.NoError(t, err)
	return v
}

// mustRebuild rebuilds the projections of s, failing the test on error.
func mustRebuild(t *testing.T, s *setup, opts *persistence.RebuildOpts) persistence.RebuildResult {
	t.Helper()
	var res persistence.RebuildResult
	o := persistence.RebuildOpts{Result: &res}
	if opts != nil {
		o.Progress = opts.Progress
	}
	require.NoError(t, s.store.Rebuild(s.ctx, &o))
	return res
}

func requireVerified(t *testing.T, s *setup) {
	t.Helper()
	rep, err := s.store.Verify(s.ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "verify: %v", rep.Problems)
}

func runProjections(t *testing.T, h Harness) {
	// The read models hold times at the database's precision; ptr points
	// at such a time.
	at := func(n int) time.Time { return at(n).Truncate(h.TimePrecision) }
	ptr := func(n int) *time.Time { t := at(n); return &t }
	t.Run("Scenario", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		p := func(evs ...orchestration.Event) {
			_, err := s.store.Append(s.ctx, nil, evs...)
			require.NoError(t, err)
		}
		p(Catalogue()[:16]...) // project p1 and thread t1 up to the revert
		p(
			orchestration.ProjectCreated{ProjectID: "p2", Name: "docs", WorkspaceRoot: "/src/docs", At: at(20)},
			orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p2", Title: "Typos", Model: "m", At: at(21)},
			orchestration.TurnStarted{ThreadID: "t2", TurnID: "v1", At: at(22)},
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "v1", MessageID: "n1", Role: orchestration.RoleAssistant, Text: "Fix", Streaming: true, At: at(23)},
			orchestration.MessageDelta{ThreadID: "t2", TurnID: "v1", MessageID: "n1", Delta: "ing ", At: at(24)},
		)
		p(orchestration.MessageDelta{ThreadID: "t2", TurnID: "v1", MessageID: "n1", Delta: "typos", At: at(25)})
		p(
			orchestration.MessageCompleted{ThreadID: "t2", TurnID: "v1", MessageID: "n1", At: at(26)},
			orchestration.MessageDelta{ThreadID: "t2", TurnID: "v1", MessageID: "n1", Delta: " (ignored: completed)", At: at(27)},
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "nope", MessageID: "n2", Role: orchestration.RoleUser, Text: "orphan", At: at(28)},
			orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p2", Title: "Second create is ignored", Model: "m", At: at(29)},
			orchestration.ProjectDeleted{ProjectID: "p2", At: at(30)},
			orchestration.SettingChanged{Key: "theme", Value: json.RawMessage(`"light"`), At: at(31)},
			orchestration.SettingChanged{Key: "theme", Value: json.RawMessage(`"dark"`), At: at(32)},
			orchestration.SettingChanged{Key: "editor", Value: json.RawMessage(`{"tabs":4}`), At: at(33)},
		)
		v := readViews(t, s)
		require.Equal(t, []projection.Project{
			{ID: "p1", Name: "peon-core", WorkspaceRoot: "/src/peon", CreatedAt: at(0), UpdatedAt: at(1), LastSequence: 2},
			{ID: "p2", Name: "docs", WorkspaceRoot: "/src/docs", CreatedAt: at(20), UpdatedAt: at(30), DeletedAt: ptr(30), LastSequence: 27},
		}, v.Projects)
		t1 := projection.Thread{ID: "t1", ProjectID: "p1", Title: "Fix the CI build", Model: "gpt-5", Status: "idle",
			TurnCount: 3, MessageCount: 2, LatestTurnID: "u3", CreatedAt: at(2), UpdatedAt: at(15), LastSequence: 16}
		t2 := projection.Thread{ID: "t2", ProjectID: "p2", Title: "Typos", Model: "m", Status: "running",
			TurnCount: 1, MessageCount: 1, LatestTurnID: "v1", CreatedAt: at(21), UpdatedAt: at(23), LastSequence: 20}
		require.Equal(t, []projection.Thread{t1, t2}, v.Threads)
		require.Equal(t, projection.ThreadDetail{
			Thread: t1,
			Turns: []projection.Turn{
				{ID: "u1", ThreadID: "t1", Ordinal: 1, Status: "completed", CheckpointRef: "refs/peon/u1", StartedAt: at(4), EndedAt: ptr(9), LastSequence: 11,
					Messages: []projection.Message{
						{ID: "m1", ThreadID: "t1", TurnID: "u1", Role: "user", Text: "Why does CI fail?", CreatedAt: at(5), UpdatedAt: at(5), LastSequence: 6},
						{ID: "m2", ThreadID: "t1", TurnID: "u1", Role: "assistant", Text: "It is \"gofmt\" — ünïcode ✓", CreatedAt: at(6), UpdatedAt: at(8), LastSequence: 9},
					}},
				{ID: "u2", ThreadID: "t1", Ordinal: 2, Status: "reverted", Error: "provider timeout", StartedAt: at(11), EndedAt: ptr(12), LastSequence: 16, Messages: []projection.Message{}},
				{ID: "u3", ThreadID: "t1", Ordinal: 3, Status: "reverted", StartedAt: at(13), EndedAt: ptr(14), LastSequence: 16, Messages: []projection.Message{}},
			},
			Checkpoints: []projection.Checkpoint{
				{ThreadID: "t1", TurnID: "u1", GitRef: "refs/peon/u1", Message: "after turn 1", CreatedAt: at(10), LastSequence: 11},
			},
		}, v.Details[0])
		require.Equal(t, []projection.Message{
			{ID: "n1", ThreadID: "t2", TurnID: "v1", Role: "assistant", Text: "Fixing typos", CreatedAt: at(23), UpdatedAt: at(26), LastSequence: 23},
		}, v.Details[1].Turns[0].Messages)
		require.Equal(t, []projection.Setting{
			{Key: "editor", Value: json.RawMessage(`{"tabs":4}`), UpdatedAt: at(33), LastSequence: 30},
			{Key: "theme", Value: json.RawMessage(`"dark"`), UpdatedAt: at(32), LastSequence: 29},
		}, v.Settings)

		// Archive and delete hide a thread unless asked.
		p(Catalogue()[16:18]...)
		r := projection.NewReader(s.store)
		visible, err := r.Threads(s.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"t2"}, threadIDs(visible))
		archived, err := r.Threads(s.ctx, &projection.ThreadFilter{ProjectID: "p1", IncludeArchived: true})
		require.NoError(t, err)
		require.Empty(t, archived, "t1 is deleted too")
		projects, err := r.Projects(s.ctx, nil)
		require.NoError(t, err)
		require.Len(t, projects, 1)
		_, err = r.Thread(s.ctx, "missing")
		require.ErrorIs(t, err, projection.ErrNotFound)
		requireVerified(t, s)
	})

	t.Run("RevertMarksLaterTurnsAndCheckpoints", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		evs := []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
			orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(0)},
		}
		for i := 1; i <= 4; i++ {
			u := fmt.Sprintf("u%d", i)
			evs = append(evs,
				orchestration.TurnStarted{ThreadID: "t", TurnID: u, At: at(i)},
				orchestration.TurnCompleted{ThreadID: "t", TurnID: u, At: at(i)},
				orchestration.CheckpointCreated{ThreadID: "t", TurnID: u, GitRef: "ref" + u, At: at(i)})
		}
		evs = append(evs, orchestration.CheckpointReverted{ThreadID: "t", GitRef: "refu2", At: at(9)},
			orchestration.CheckpointReverted{ThreadID: "t", GitRef: "unknown", At: at(10)})
		_, err := s.store.Append(s.ctx, nil, evs...)
		require.NoError(t, err)
		d, err := projection.NewReader(s.store).Thread(s.ctx, "t")
		require.NoError(t, err)
		var statuses []string
		for _, u := range d.Turns {
			statuses = append(statuses, u.Status)
		}
		require.Equal(t, []string{"completed", "completed", "reverted", "reverted"}, statuses)
		var reverted []bool
		for _, c := range d.Checkpoints {
			reverted = append(reverted, c.RevertedAt != nil)
		}
		require.Equal(t, []bool{false, false, true, true}, reverted)
		require.Equal(t, at(9), d.UpdatedAt)
		requireVerified(t, s)
	})

	t.Run("EndingARevertedTurnIdlesItsThread", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
			orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(0)},
			orchestration.TurnStarted{ThreadID: "t", TurnID: "u1", At: at(1)},
			orchestration.TurnCompleted{ThreadID: "t", TurnID: "u1", At: at(2)},
			orchestration.CheckpointCreated{ThreadID: "t", TurnID: "u1", GitRef: "r1", At: at(3)},
			orchestration.TurnStarted{ThreadID: "t", TurnID: "u2", At: at(4)},
			orchestration.CheckpointReverted{ThreadID: "t", GitRef: "r1", At: at(5)},
			orchestration.TurnCompleted{ThreadID: "t", TurnID: "u2", At: at(6)},
		)
		require.NoError(t, err)
		d, err := projection.NewReader(s.store).Thread(s.ctx, "t")
		require.NoError(t, err)
		require.Equal(t, "idle", d.Status)
		require.Equal(t, at(6), d.UpdatedAt)
		require.Equal(t, "reverted", d.Turns[1].Status, "a turn ends once; reverted stays reverted")
		requireVerified(t, s)
	})

	t.Run("FailedAppendLeavesProjectionsUntouched", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:10]...)
		require.NoError(t, err)
		before := readViews(t, s)
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t1": 3}},
			orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "x", At: at(50)})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		_, err = s.store.Append(s.ctx, nil,
			orchestration.ThreadRenamed{ThreadID: "t1", Title: "changed", At: at(50)},
			orchestration.TurnStarted{ThreadID: "t1", At: at(51)})
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		require.Equal(t, before, readViews(t, s))
		requireVerified(t, s)
	})

	t.Run("IncrementalEqualsRebuild", func(t *testing.T) {
		t.Parallel()
		for seed := range uint64(4 * h.Large) {
			s := h.setup(t)
			rng := rand.New(rand.NewPCG(seed, 42))
			evs := RandomEvents(rng, 400)
			for len(evs) > 0 {
				n := min(len(evs), 1+rng.IntN(40))
				_, err := s.store.Append(s.ctx, nil, evs[:n]...)
				require.NoError(t, err)
				evs = evs[n:]
			}
			rep, err := s.store.Verify(s.ctx)
			require.NoError(t, err)
			require.True(t, rep.OK(), "seed %d: %v", seed, rep.Problems)
			before := readViews(t, s)
			mustRebuild(t, s, nil)
			require.Equal(t, before, readViews(t, s), "seed %d", seed)
		}
	})

	t.Run("RebuildReportsProgressAndRestoresTables", func(t *testing.T) {
		t.Parallel()
		s := setupLong(t, h)
		var err error
		before := readViews(t, s)
		_, err = s.store.Client().ExecContext(s.ctx, "DELETE FROM projection_messages")
		require.NoError(t, err)
		var calls [][2]int64
		mustRebuild(t, s, &persistence.RebuildOpts{Progress: func(done, total int64) {
			calls = append(calls, [2]int64{done, total})
		}})
		require.Equal(t, before, readViews(t, s))
		require.GreaterOrEqual(t, len(calls), 3)
		require.Equal(t, [2]int64{0, 2324}, calls[0])
		require.Equal(t, [2]int64{2324, 2324}, calls[len(calls)-1])
		for i := 1; i < len(calls); i++ {
			require.Greater(t, calls[i][0], calls[i-1][0])
		}
	})

	// A rebuild that leaves rows out says so: an operator must not read a
	// clean count over a log with undecodable rows or holes.
	t.Run("RebuildReportsWhatItSkipped", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		cat := Catalogue()
		_, err := s.store.Append(s.ctx, nil, cat...)
		require.NoError(t, err)
		res := mustRebuild(t, s, nil)
		require.Equal(t, persistence.RebuildResult{Events: int64(len(cat))}, res, "a sound log: nothing skipped")

		exec := func(q string) {
			_, err := s.store.Client().ExecContext(s.ctx, q)
			require.NoError(t, err)
		}
		exec("UPDATE events SET event_type = 'thread.exploded' WHERE sequence = 3")
		exec(`UPDATE events SET payload = '{"thread_id": 42}' WHERE sequence = 7`)
		exec("DELETE FROM events WHERE sequence IN (10, 11, 14)")
		res = mustRebuild(t, s, nil)
		require.Equal(t, int64(len(cat)-5), res.Events)
		require.Equal(t, int64(2), res.Undecodable)
		require.NotNil(t, res.FirstUndecodable)
		require.Equal(t, int64(3), res.FirstUndecodable.Sequence)
		require.Equal(t, "thread.exploded", res.FirstUndecodable.Type)
		require.ErrorIs(t, res.FirstUndecodable, orchestration.ErrUnknownType)
		require.Equal(t, int64(3), res.Missing)
		require.Equal(t, int64(10), res.FirstMissing)
	})

	// A rebuild builds the new tables aside and holds the write lock only
	// to swap them in: another store on the same database appends while
	// it runs, readers see the old tables until the swap, and the swap
	// takes in what was appended meanwhile.
	t.Run("RebuildLetsOtherStoresAppend", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store has no other store")
		}
		t.Parallel()
		s := setupLong(t, h)
		var err error
		want := readViews(t, s)
		// Stale tables, which the rebuild repairs: the readers see them
		// whole until it commits.
		_, err = s.store.Client().ExecContext(s.ctx, "DELETE FROM projection_messages")
		require.NoError(t, err)
		_, err = s.store.Client().ExecContext(s.ctx, "UPDATE projection_threads SET title = 'stale'")
		require.NoError(t, err)
		stale := readViews(t, s)
		require.NotEqual(t, want, stale)

		other := &setup{ctx: s.ctx, store: h.open(t, s.dsn), dsn: s.dsn, h: h}
		appended := make(chan error, 1)
		paused, waited := false, false
		mustRebuild(t, s, &persistence.RebuildOpts{Progress: func(done, total int64) {
			if paused || done == 0 || done == total {
				return
			}
			paused = true
			require.Equal(t, stale, readViews(t, other), "a reader saw the rebuild before it committed")
			waited = !appendsPromptly(t, other, appended)
		}})
		require.True(t, paused, "the rebuild reported no progress between its first and last page")
		if waited {
			require.NoError(t, <-appended)
		}
		got := readViews(t, s)
		require.Equal(t, want.Threads, got.Threads)
		require.Equal(t, want.Details, got.Details)
		require.Contains(t, settingKeys(got.Settings), "during")
		require.Equal(t, got, readViews(t, other))
		requireVerified(t, s)
		// The rebuild's connection, whose temporary tables hide the real
		// ones, is not handed to the next append.
		for i := range 3 {
			_, err = s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: fmt.Sprint("after", i), Value: json.RawMessage(`2`), At: at(41)})
			require.NoError(t, err)
		}
		requireVerified(t, s)
		require.Contains(t, settingKeys(readViews(t, other).Settings), "after2")
	})

	// Verify, like Rebuild, builds its rebuild aside, and then reads one
	// snapshot without the write lock: another store on the same database
	// appends while it runs, and the report takes in what was committed
	// before that snapshot, here the event appended during the build.
	t.Run("VerifyLetsOtherStoresAppend", func(t *testing.T) {
		if !h.Durable || h.SetVerifyProgress == nil {
			t.Skip("a private in-memory store has no other store")
		}
		t.Parallel()
		s := setupLong(t, h)
		var err error
		before, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.True(t, before.OK(), "verify: %v", before.Problems)

		other := &setup{ctx: s.ctx, store: h.open(t, s.dsn), dsn: s.dsn, h: h}
		appended := make(chan error, 1)
		paused, waited := false, false
		h.SetVerifyProgress(s.store, func(done, total int64) {
			if paused || done == 0 || done == total {
				return
			}
			paused = true
			waited = !appendsPromptly(t, other, appended)
		})
		rep, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.True(t, paused, "Verify reported no progress between its first and last page")
		if waited {
			require.NoError(t, <-appended)
		}
		require.True(t, rep.OK(), "verify: %v", rep.Problems)
		require.Equal(t, before.Events+1, rep.Events, "the event appended during the build is in the report")
		// The stored tables are compared, not the rebuild with itself.
		_, err = other.store.Client().ExecContext(s.ctx, "UPDATE projection_threads SET title = 'stale' WHERE thread_id = 'big'")
		require.NoError(t, err)
		rep, err = s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"projection projection_threads big.title: stored stale, expected t"}, problemStrings(rep))
		// Verify's connection, whose temporary tables hide the real ones,
		// is not handed to the next append.
		for i := range 3 {
			_, err = s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: fmt.Sprint("after", i), Value: json.RawMessage(`2`), At: at(41)})
			require.NoError(t, err)
		}
		require.Contains(t, settingKeys(readViews(t, other).Settings), "after2")
	})

	// Projectors that disagree make CatchUp rebuild.
	t.Run("CatchUpRebuildsWhenProjectorsDisagree", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		want := readViews(t, s)
		_, err = s.store.Client().ExecContext(s.ctx, "DELETE FROM projection_turns")
		require.NoError(t, err)
		_, err = s.store.Client().ExecContext(s.ctx, "UPDATE projection_state SET last_sequence = 1 WHERE projector = 'turns'")
		require.NoError(t, err)
		n, err := s.store.CatchUp(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(len(Catalogue())), n)
		require.Equal(t, want, readViews(t, s))
		requireVerified(t, s)
		_, err = s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`2`), At: at(41)})
		require.NoError(t, err)
		requireVerified(t, s)
	})

	t.Run("VerifyListsDifferences", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		requireVerified(t, s)
		exec := func(q string) {
			_, err := s.store.Client().ExecContext(s.ctx, q)
			require.NoError(t, err)
		}
		exec("UPDATE projection_threads SET title = 'tampered' WHERE thread_id = 't1'")
		exec("DELETE FROM settings")
		exec("DELETE FROM events WHERE sequence = 5")
		rep, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.False(t, rep.OK())
		got := problemStrings(rep)
		require.Contains(t, got, "projection projection_threads t1.title: stored tampered, expected Fix the CI build")
		require.Contains(t, got, "projection settings theme: row missing")
		require.Contains(t, got, "stream thread:t1: 15 events with versions 1..16, want 1..15")
		require.Contains(t, got, "sequence: 19 events but the last sequence is 20: the log has gaps")
		// Verify changed nothing.
		rep2, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.Equal(t, rep.Problems, rep2.Problems)
	})

	t.Run("VerifyListsEveryDifference", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		for _, q := range []string{
			"UPDATE projection_projects SET name = 'renamed' WHERE project_id = 'p1'",
			"UPDATE projection_threads SET turn_count = 9, updated_at = '2030-01-02 03:04:05+00:00' WHERE thread_id = 't1'",
			"UPDATE projection_turns SET error = NULL WHERE turn_id = 'u2'",
			"DELETE FROM projection_turns WHERE turn_id = 'u3'",
			"INSERT INTO projection_turns (turn_id, last_sequence, thread_id, ordinal, status, started_at) VALUES ('u0', 1, 't1', 99, 'running', '2030-01-02 03:04:05+00:00')",
			"UPDATE projection_messages SET streaming = true WHERE message_id = 'm2'",
			"UPDATE checkpoints SET message = 'before' WHERE thread_id = 't1' AND turn_id = 'u1'",
			`UPDATE settings SET value = '"light"' WHERE key = 'theme'`,
		} {
			_, err := s.store.Client().ExecContext(s.ctx, q)
			require.NoError(t, err, q)
		}
		rep, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		got := problemStrings(rep)
		// Per table: the rows a rebuild has (missing or different) in key
		// order, then the rows it does not have.
		require.Equal(t, []string{
			"projection projection_projects p1.name: stored renamed, expected peon-core",
			"projection projection_threads t1.turn_count: stored 9, expected 3",
			"projection projection_threads t1.updated_at: stored 2030-01-02T03:04:05Z, expected " + at(17).Format(time.RFC3339Nano),
			"projection projection_turns u2.error: stored NULL, expected provider timeout",
			"projection projection_turns u3: row missing",
			"projection projection_turns u0: row not in a rebuild",
			"projection projection_messages m2.streaming: stored 1, expected 0",
			"projection checkpoints t1/u1.message: stored before, expected after turn 1",
			`projection settings theme.value: stored "light", expected {"mode":"dark","size":14}`,
		}, got)
		// Verify changed nothing and left no temporary table behind: the
		// pool hands the connection it used to the next Verify, whose
		// CREATE TEMP TABLE would fail.
		rep2, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		require.Equal(t, rep.Problems, rep2.Problems)
		mustRebuild(t, s, nil)
		requireVerified(t, s)
	})

	t.Run("VerifyTellsNullFromTheTextNULL", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		// u1 completed: a rebuild leaves its error NULL. Both render as
		// NULL, but they are different values.
		_, err = s.store.Client().ExecContext(s.ctx, "UPDATE projection_turns SET error = 'NULL' WHERE turn_id = 'u1'")
		require.NoError(t, err)
		rep, err := s.store.Verify(s.ctx)
		require.NoError(t, err)
		got := problemStrings(rep)
		require.Equal(t, []string{
			"projection projection_turns u1.error: one is SQL NULL, the other the text NULL: stored NULL, expected NULL",
		}, got)
	})

	t.Run("OpenCatchesUpProjections", func(t *testing.T) {
		t.Parallel()
		if !h.Durable {
			t.Skip("needs a database that outlives its store")
		}
		dsn := h.NewDSN(t)
		bare, err := persistence.OpenWith(t.Context(), dsn, &persistence.Options{NoProjections: true})
		require.NoError(t, err)
		_, err = bare.Append(t.Context(), nil, Catalogue()[:12]...)
		require.NoError(t, err)
		require.NoError(t, bare.Close())
		s := &setup{ctx: t.Context(), store: h.open(t, dsn), dsn: dsn, h: h}
		require.Len(t, readViews(t, s).Threads, 1)
		requireVerified(t, s)
	})
}

func settingKeys(ss []projection.Setting) []string {
	var keys []string
	for _, st := range ss {
		keys = append(keys, st.Key)
	}
	return keys
}

func threadIDs(ts []projection.Thread) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// problemStrings returns the problems of rep as Verify prints them.
func problemStrings(rep *persistence.VerifyReport) []string {
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.String())
	}
	return got
}

// setupLong is a store holding the catalogue and a thread of 2,300 deltas:
// long enough for a rebuild to report progress between its first and last
// page.
func setupLong(t *testing.T, h Harness) *setup {
	t.Helper()
	s := h.setup(t)
	_, err := s.store.Append(s.ctx, nil, Catalogue()...)
	require.NoError(t, err)
	_, err = s.store.Append(s.ctx, nil, append([]orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "big", ProjectID: "p", Title: "t", Model: "m", At: at(0)},
	}, Deltas("big", 2300)...)...)
	require.NoError(t, err)
	return s
}

// appendsPromptly appends the setting "during" through other and reports
// whether it returned within 10 s; when it did not, the test has failed
// and the append's error arrives on appended later.
func appendsPromptly(t *testing.T, other *setup, appended chan error) bool {
	t.Helper()
	go func() {
		_, err := other.store.Append(other.ctx, nil, orchestration.SettingChanged{Key: "during", Value: json.RawMessage(`1`), At: at(40)})
		appended <- err
	}()
	select {
	case err := <-appended:
		require.NoError(t, err)
		return true
	case <-time.After(10 * time.Second):
		t.Error("another store's append waited for the rebuild or Verify")
		return false
	}
}
