package persistencetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// pruneFixture is statsFixture with a thread t5 of the project p2, which
// was deleted 3 h ago: 39 events in 8 streams.
func pruneFixture(now time.Time) []orchestration.Event {
	at := now.Add(-5 * time.Hour)
	return append(statsFixture(now),
		orchestration.ThreadCreated{ThreadID: "t5", ProjectID: "p2", Title: "In p2", Model: "gpt-5", At: at},
		orchestration.TurnStarted{ThreadID: "t5", TurnID: "u5", At: at},
		orchestration.MessageAdded{ThreadID: "t5", TurnID: "u5", MessageID: "m6", Role: orchestration.RoleUser, Text: "hello", At: at},
		orchestration.CheckpointCreated{ThreadID: "t5", TurnID: "u5", GitRef: "refs/peon/u5", Message: "after", At: at},
		orchestration.TurnCompleted{ThreadID: "t5", TurnID: "u5", At: at},
	)
}

// prunePolicy prunes what was deleted over an hour ago (p2, with its
// thread t5, and t4) or archived over a week ago (t3).
var prunePolicy = persistence.Retention{PruneDeletedAfter: time.Hour, PruneArchivedAfter: 7 * 24 * time.Hour}

// pruned sets up a store with pruneFixture and the prune options of
// prunePolicy as Stats reports them.
func prunedSetup(t *testing.T, h Harness) (*setup, *persistence.Stats, *persistence.PruneOpts) {
	t.Helper()
	s := h.setup(t)
	_, err := s.store.Append(s.ctx, nil, pruneFixture(time.Now().UTC().Truncate(time.Second))...)
	require.NoError(t, err)
	st, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: prunePolicy})
	require.NoError(t, err)
	return s, st, &persistence.PruneOpts{DeletedBefore: st.Prunable.DeletedBefore, ArchivedBefore: st.Prunable.ArchivedBefore}
}

// rowsOf counts the projection rows of thread or project id (a plain
// test id, written into the query).
func rowsOf(t *testing.T, s *setup, id string) int64 {
	t.Helper()
	var total int64
	for _, q := range []string{
		"SELECT COUNT(*) FROM projection_threads WHERE thread_id = '%s'",
		"SELECT COUNT(*) FROM projection_turns WHERE thread_id = '%s'",
		"SELECT COUNT(*) FROM projection_messages WHERE thread_id = '%s'",
		"SELECT COUNT(*) FROM checkpoints WHERE thread_id = '%s'",
		"SELECT COUNT(*) FROM projection_projects WHERE project_id = '%s'",
	} {
		rows, err := s.store.Client().QueryContext(s.ctx, fmt.Sprintf(q, id))
		require.NoError(t, err)
		for rows.Next() {
			var n int64
			require.NoError(t, rows.Scan(&n))
			total += n
		}
		require.NoError(t, rows.Close())
	}
	return total
}

func requireSound(t *testing.T, s *persistence.Store) *persistence.VerifyReport {
	t.Helper()
	rep, err := s.Verify(t.Context())
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	return rep
}

func export(t *testing.T, s *persistence.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := s.Export(t.Context(), &b, nil)
	require.NoError(t, err)
	return b.Bytes()
}

func runPrune(t *testing.T, h Harness) {
	// Prune removes what Stats predicts: p2 with its thread t5, t4 and
	// t3, their events, bytes and projection rows, one tombstone each;
	// Verify is sound after it and Stats then finds nothing prunable.
	t.Run("MatchesStats", func(t *testing.T) {
		t.Parallel()
		s, st, opts := prunedSetup(t, h)
		require.Equal(t, int64(4), st.Prunable.Streams, "p2, t5 (of p2), t4, t3")
		before := map[string]int64{}
		for _, id := range []string{"p2", "t5", "t4", "t3", "t1"} {
			before[id] = rowsOf(t, s, id)
		}
		require.Positive(t, before["t5"])

		rep, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		require.Equal(t, st.Prunable.StreamSet, persistence.StreamSet{Streams: rep.Streams, Events: rep.Events, Bytes: rep.Bytes})
		require.Equal(t, before["p2"]+before["t5"]+before["t4"]+before["t3"], rep.ProjectionRows)
		var streams []string
		for _, ts := range rep.Tombstones {
			streams = append(streams, ts.Stream)
		}
		require.Equal(t, []string{"project:p2", "thread:t3", "thread:t4", "thread:t5"}, streams, "in the order of their first event")
		for _, id := range []string{"p2", "t5", "t4", "t3"} {
			require.Zero(t, rowsOf(t, s, id), id)
		}
		require.Equal(t, before["t1"], rowsOf(t, s, "t1"), "other rows stay")

		after, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: prunePolicy})
		require.NoError(t, err)
		require.Equal(t, st.Events-rep.Events, after.Events)
		require.Equal(t, st.Bytes-rep.Bytes, after.Bytes)
		require.Zero(t, after.Prunable.Streams)
		tombs, err := s.store.Tombstones(s.ctx)
		require.NoError(t, err)
		require.ElementsMatch(t, rep.Tombstones, tombs)

		vr := requireSound(t, s.store)
		require.Equal(t, rep.Events, vr.Pruned)
		again, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		require.Zero(t, again.Streams, "nothing left to prune")
		var res persistence.RebuildResult
		require.NoError(t, s.store.Rebuild(s.ctx, &persistence.RebuildOpts{Result: &res}))
		require.Equal(t, after.Events, res.Events)
		require.Zero(t, res.Missing, "no sequence missing but the pruned, which are recorded")
		requireSound(t, s.store)
	})

	// The space comes back: a deleted thread of 2,000 deltas frees its
	// pages, which a new SQLite file (incremental vacuum) gives back to the
	// file system; Vacuum runs on both engines.
	t.Run("SpaceComesBack", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		at := time.Now().UTC().Add(-48 * time.Hour)
		evs := []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
			orchestration.ThreadCreated{ThreadID: "big", ProjectID: "p", Title: "big", Model: "m", At: at},
			orchestration.TurnStarted{ThreadID: "big", TurnID: "u", At: at},
			orchestration.MessageAdded{ThreadID: "big", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Streaming: true, At: at},
		}
		for range 2000 {
			evs = append(evs, orchestration.MessageDelta{ThreadID: "big", TurnID: "u", MessageID: "m", Delta: "streamed text of a long reply, sixty bytes of it, or so....", At: at})
		}
		evs = append(evs, orchestration.ThreadDeleted{ThreadID: "big", At: at})
		_, err := s.store.Append(s.ctx, nil, evs...)
		require.NoError(t, err)
		rep, err := s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: time.Now(), Vacuum: true})
		require.NoError(t, err)
		require.Equal(t, int64(len(evs)-1), rep.Events)
		st, err := s.store.Stats(s.ctx)
		require.NoError(t, err)
		if st.Database.PageSize > 0 { // SQLite
			require.Greater(t, rep.BytesFreed, rep.Bytes, "the events' pages, with their indexes")
			require.Positive(t, rep.BytesReclaimed)
		}
		requireSound(t, s.store)
	})

	// A closed store refuses, a dry run too.
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		require.NoError(t, s.store.Close())
		_, err := s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: time.Now()})
		require.ErrorIs(t, err, persistence.ErrClosed)
		_, err = s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: time.Now(), DryRun: true})
		require.ErrorIs(t, err, persistence.ErrClosed)
	})

	// A thread qualifies by itself; its project stays unless deleted.
	t.Run("ArchivedOnly", func(t *testing.T) {
		t.Parallel()
		s, _, opts := prunedSetup(t, h)
		rep, err := s.store.Prune(s.ctx, &persistence.PruneOpts{ArchivedBefore: opts.ArchivedBefore})
		require.NoError(t, err)
		require.Len(t, rep.Tombstones, 1)
		require.Equal(t, "thread:t3", rep.Tombstones[0].Stream)
		requireSound(t, s.store)
	})

	// A dry run reports what Prune then removes, and changes nothing.
	t.Run("DryRunChangesNothing", func(t *testing.T) {
		t.Parallel()
		s, _, opts := prunedSetup(t, h)
		exported := export(t, s.store)
		dry := *opts
		dry.DryRun = true
		var arch bytes.Buffer
		dry.Archive = &arch
		plan, err := s.store.Prune(s.ctx, &dry)
		require.NoError(t, err)
		require.True(t, plan.DryRun)
		require.Equal(t, exported, export(t, s.store))
		require.Zero(t, arch.Len(), "no archive on a dry run")
		tombs, err := s.store.Tombstones(s.ctx)
		require.NoError(t, err)
		require.Empty(t, tombs)

		rep, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		require.Equal(t, []int64{plan.Streams, plan.Events, plan.Bytes, plan.ProjectionRows},
			[]int64{rep.Streams, rep.Events, rep.Bytes, rep.ProjectionRows})
		require.Len(t, plan.Tombstones, len(rep.Tombstones))
		for i := range rep.Tombstones {
			p, r := plan.Tombstones[i], rep.Tombstones[i]
			p.PrunedAt, r.PrunedAt = time.Time{}, time.Time{}
			require.Equal(t, r, p)
		}
	})

	// Every append path refuses a pruned stream with ErrStreamPruned,
	// writes nothing and takes no sequence.
	t.Run("AppendRefused", func(t *testing.T) {
		t.Parallel()
		s, _, opts := prunedSetup(t, h)
		_, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		rename := orchestration.ThreadRenamed{ThreadID: "t4", Title: "back", At: time.Now().UTC()}
		live := orchestration.ThreadRenamed{ThreadID: "t1", Title: "live", At: time.Now().UTC()}
		recs, err := s.store.Append(s.ctx, nil, live)
		require.NoError(t, err)
		first := recs[0].Sequence
		require.Equal(t, int64(40), first, "after t5's pruned 35..39")
		requirePruned := func(err error, what string) {
			t.Helper()
			require.ErrorIs(t, err, persistence.ErrStreamPruned, what)
			var pe *persistence.StreamPrunedError
			require.ErrorAs(t, err, &pe, what)
			require.Equal(t, "thread:t4", pe.Stream, what)
		}
		_, err = s.store.Append(s.ctx, nil, rename)
		requirePruned(err, "Append")
		_, err = s.store.Append(s.ctx, nil, live, rename)
		requirePruned(err, "Append of two streams")
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t4": 3}}, rename)
		requirePruned(err, "Append expecting a version")
		_, err = s.store.Append(s.ctx, nil, orchestration.ProjectRenamed{ProjectID: "p2", Name: "x", At: time.Now().UTC()})
		require.ErrorIs(t, err, persistence.ErrStreamPruned, "Append to a pruned project")
		_, err = s.store.StreamVersion(s.ctx, "thread:t4")
		requirePruned(err, "StreamVersion")

		tx, err := s.store.Client().Tx(s.ctx)
		require.NoError(t, err)
		_, err = s.store.AppendTx(s.ctx, tx, nil, rename)
		requirePruned(err, "AppendTx")
		require.NoError(t, tx.Rollback())

		// Concurrent Appends go through group commit.
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() {
				ev := orchestration.Event(rename)
				if i%2 == 1 {
					ev = orchestration.SettingChanged{Key: "k", Value: []byte(`1`), At: time.Now().UTC()}
				}
				_, errs[i] = s.store.Append(s.ctx, nil, ev)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i%2 == 1 {
				require.NoError(t, err, "concurrent append %d", i)
			} else {
				requirePruned(err, "concurrent append")
			}
		}
		recs, err = s.store.Append(s.ctx, nil, live)
		require.NoError(t, err)
		require.Equal(t, first+int64(len(errs)/2)+1, recs[0].Sequence, "the refused appends took no sequence")
		requireSound(t, s.store)
	})

	// Pruning the head of the log does not give its sequences back.
	t.Run("HeadNotReused", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		at := time.Now().UTC().Add(-48 * time.Hour)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
			orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at},
			orchestration.ThreadDeleted{ThreadID: "t", At: at})
		require.NoError(t, err)
		rep, err := s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: time.Now()})
		require.NoError(t, err)
		require.Equal(t, int64(1), rep.Streams)
		require.Equal(t, int64(3), rep.Tombstones[0].LastSequence)
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), head, "the last event's")
		exported := export(t, s.store)
		recs, err := s.store.Append(s.ctx, nil, orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "t", Model: "m", At: at})
		require.NoError(t, err)
		require.Equal(t, int64(4), recs[0].Sequence)
		requireSound(t, s.store)

		// So does an import of its export, whose last event is 1.
		imp := h.setup(t)
		_, err = imp.store.Import(imp.ctx, bytes.NewReader(exported), nil)
		require.NoError(t, err)
		requireSound(t, imp.store)
		recs, err = imp.store.Append(imp.ctx, nil, orchestration.ThreadCreated{ThreadID: "t3", ProjectID: "p", Title: "t", Model: "m", At: at})
		require.NoError(t, err)
		require.Equal(t, int64(4), recs[0].Sequence)
	})

	// The archive holds the pruned events and imports into an empty
	// store, which Verify finds sound.
	t.Run("ArchiveImports", func(t *testing.T) {
		t.Parallel()
		s, _, opts := prunedSetup(t, h)
		var arch bytes.Buffer
		opts.Archive = &arch
		rep, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		require.Equal(t, rep.Events, rep.Archived)
		imp := h.setup(t)
		res, err := imp.store.Import(imp.ctx, &arch, nil)
		require.NoError(t, err)
		require.Equal(t, rep.Events, res.Events)
		st, err := imp.store.Stats(imp.ctx)
		require.NoError(t, err)
		require.Equal(t, rep.Bytes, st.Bytes)
		require.Equal(t, rep.Streams, st.Streams)
		requireSound(t, imp.store)
	})

	// The archive of a stream that compaction folded imports too: its
	// versions are renumbered over the gaps.
	t.Run("ArchiveOfCompactedStream", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		at := time.Now().UTC().Add(-48 * time.Hour)
		evs := []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
			orchestration.ThreadCreated{ThreadID: "c", ProjectID: "p", Title: "c", Model: "m", At: at},
			orchestration.TurnStarted{ThreadID: "c", TurnID: "u", At: at},
			orchestration.MessageAdded{ThreadID: "c", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Streaming: true, At: at},
		}
		for _, d := range []string{"a", "b", "c", "d"} {
			evs = append(evs, orchestration.MessageDelta{ThreadID: "c", TurnID: "u", MessageID: "m", Delta: d, At: at})
		}
		evs = append(evs, orchestration.MessageCompleted{ThreadID: "c", TurnID: "u", MessageID: "m", At: at},
			orchestration.TurnCompleted{ThreadID: "c", TurnID: "u", At: at},
			orchestration.ThreadDeleted{ThreadID: "c", At: at})
		_, err := s.store.Append(s.ctx, nil, evs...)
		require.NoError(t, err)
		crep, err := s.store.Compact(s.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, int64(3), crep.Events)
		var arch bytes.Buffer
		rep, err := s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: time.Now(), Archive: &arch})
		require.NoError(t, err)
		require.Equal(t, int64(len(evs)-1-3), rep.Events)
		requireSound(t, s.store)
		imp := h.setup(t)
		_, err = imp.store.Import(imp.ctx, &arch, nil)
		require.NoError(t, err)
		requireSound(t, imp.store)
	})

	// An export reads one snapshot: a prune that runs while it writes
	// (here after its first page) changes nothing of what it writes, so
	// the file is the log as it was and imports.
	t.Run("ExportDuringPrune", func(t *testing.T) {
		t.Parallel()
		if !h.Durable {
			t.Skip("in memory the export holds the store's one connection: nothing else runs meanwhile")
		}
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Deltas("filler", 1500)...) // more than a page, before what is pruned
		require.NoError(t, err)
		_, err = s.store.Append(s.ctx, nil, pruneFixture(time.Now().UTC().Truncate(time.Second))...)
		require.NoError(t, err)
		st, err := s.store.StatsWith(s.ctx, &persistence.StatsOpts{Retention: prunePolicy})
		require.NoError(t, err)
		before := export(t, s.store)
		var during bytes.Buffer
		var pruned *persistence.PruneReport
		_, err = s.store.Export(s.ctx, &during, &persistence.ExportOpts{Progress: func(done, total int64) {
			if pruned == nil {
				var err error
				start := time.Now()
				pruned, err = s.store.Prune(s.ctx, &persistence.PruneOpts{DeletedBefore: st.Prunable.DeletedBefore, ArchivedBefore: st.Prunable.ArchivedBefore})
				require.NoError(t, err)
				// On SQLite the checkpoint that truncates the WAL gives up
				// on a reader of an older snapshot instead of waiting for
				// it (with the write lock) as long as the busy timeout.
				require.Less(t, time.Since(start), 10*time.Second, "the prune waited for the export")
			}
		}})
		require.NoError(t, err)
		require.NotNil(t, pruned, "the export reported no progress")
		require.Positive(t, pruned.Events, "the prune removed nothing")
		require.Equal(t, string(before), during.String(), "the export saw the prune")
		imp := h.setup(t)
		_, err = imp.store.Import(imp.ctx, bytes.NewReader(during.Bytes()), nil)
		require.NoError(t, err)
		require.Equal(t, string(before), string(export(t, imp.store)))
	})

	// A pruned store exports its tombstones; the export imports into an
	// empty store and exports again byte for byte, and the imported store
	// refuses the pruned streams too.
	t.Run("ExportImportRoundTrip", func(t *testing.T) {
		t.Parallel()
		s, _, opts := prunedSetup(t, h)
		_, err := s.store.Prune(s.ctx, opts)
		require.NoError(t, err)
		exported := export(t, s.store)
		require.True(t, bytes.HasPrefix(exported, []byte(`{"tombstone":{"stream":"project:p2",`)), "%.80s", exported)
		imp := h.setup(t)
		_, err = imp.store.Import(imp.ctx, bytes.NewReader(exported), nil)
		require.NoError(t, err)
		require.Equal(t, string(exported), string(export(t, imp.store)))
		requireSound(t, imp.store)
		_, err = imp.store.Append(imp.ctx, nil, orchestration.ThreadRenamed{ThreadID: "t4", Title: "x", At: time.Now().UTC()})
		require.ErrorIs(t, err, persistence.ErrStreamPruned)

		// Without its tombstones the export has gaps that Import refuses.
		lines := bytes.SplitAfter(exported, []byte("\n"))
		var events []byte
		for _, l := range lines {
			if !bytes.HasPrefix(l, []byte(`{"tombstone"`)) {
				events = append(events, l...)
			}
		}
		bare := h.setup(t)
		_, err = bare.store.Import(bare.ctx, bytes.NewReader(events), nil)
		var ie *persistence.ImportError
		require.True(t, errors.As(err, &ie), "%v", err)
		require.ErrorContains(t, err, "gap")
	})
}
