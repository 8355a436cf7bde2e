package persistence_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// TestCompactShrinksFile checks that a new SQLite file is in incremental
// vacuum mode and that compaction gives its pages back to the file
// system, and that --vacuum turns a file made without it to that mode.
func TestCompactShrinksFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), persistence.DBFileName)
	s, err := persistence.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 2, queryInt(t, path, "PRAGMA auto_vacuum"), "a new file is in incremental vacuum mode")

	evs := append([]orchestration.Event{orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "x", Model: "m", At: persistencetest.T0}},
		persistencetest.Deltas("t1", 20000)...)
	evs = append(evs, orchestration.MessageCompleted{ThreadID: "t1", TurnID: "t1-turn", MessageID: "t1-msg", At: persistencetest.T0})
	_, err = s.Append(ctx, nil, evs...)
	require.NoError(t, err)
	fileSize := func() int64 {
		_, err := rawDB(t, path).Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		require.NoError(t, err)
		info, err := os.Stat(path)
		require.NoError(t, err)
		return info.Size()
	}
	before := fileSize()
	rep, err := s.Compact(ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 20000-5, rep.Events, "20,000 deltas fold into 5 events of 4,096 deltas at most")
	after := fileSize()
	t.Logf("file %d -> %d bytes; reclaimed %d", before, after, rep.Reclaimed)
	require.Less(t, after, before/3, "the file shrank")
	require.Positive(t, rep.Reclaimed)
	verifyProjections(t, ctx, s)

	// A file whose mode is off (made by an older build) keeps its free
	// pages until a Compact with Vacuum turns it to incremental mode.
	_, err = rawDB(t, path).Exec("PRAGMA auto_vacuum = NONE; VACUUM")
	require.NoError(t, err)
	require.Equal(t, 0, queryInt(t, path, "PRAGMA auto_vacuum"))
	_, err = s.Compact(ctx, &persistence.CompactOpts{Vacuum: true})
	require.NoError(t, err)
	require.Equal(t, 2, queryInt(t, path, "PRAGMA auto_vacuum"))
	var n int
	for _, err := range s.ReadStream(ctx, "thread:t1", 1) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 5, n, "the five folded deltas fold again into one: created, started, added, one delta, completed")
	verifyProjections(t, ctx, s)
}
