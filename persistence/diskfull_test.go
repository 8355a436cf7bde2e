package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
)

// sessionExport returns the export of a store holding a project, a
// thread and n streamed deltas.
func sessionExport(t *testing.T, n int) []byte {
	t.Helper()
	ctx := t.Context()
	s, err := OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	evs := []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at},
		orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleAssistant, Streaming: true, At: at},
	}
	for i := range n {
		evs = append(evs, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: fmt.Sprintf("a token of the reply, number %d ", i), At: at})
	}
	_, err = s.Append(ctx, nil, evs...)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = s.Export(ctx, &b, nil)
	require.NoError(t, err)
	return b.Bytes()
}

// TestImportDiskFullPageLimit: an import that the database's size limit
// (PRAGMA max_page_count, which makes SQLite fail with SQLITE_FULL as a
// full disk does) stops when it moves its events in says that the disk is
// full and that nothing was imported, and writes nothing. (The store's
// pool is cut to one connection, so the import runs on the one that
// carries the limit.)
func TestImportDiskFullPageLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	input := sessionExport(t, 5000)
	s, err := Open(ctx, dbtest.SQLiteFile(t))
	require.NoError(t, err)
	defer s.Close()
	s.db.SetMaxOpenConns(1)
	pages, err := queryInt64(ctx, s.db, "PRAGMA page_count")
	require.NoError(t, err)
	_, err = queryInt64(ctx, s.db, fmt.Sprintf("PRAGMA max_page_count = %d", pages+40))
	require.NoError(t, err)

	_, err = s.Import(ctx, bytes.NewReader(input), nil)
	require.Error(t, err)
	var se *sqlite.Error
	require.True(t, errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL, "%v", err)
	t.Log(err)
	require.Regexp(t, `^import: .*database or disk is full.*: disk full: nothing was imported; free space`, err.Error())
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
	n, err := queryInt64(ctx, s.db, "SELECT COUNT(*) FROM projection_messages")
	require.NoError(t, err)
	require.Zero(t, n, "the projections aside were not swapped in")

	_, err = queryInt64(ctx, s.db, "PRAGMA max_page_count = 4294967294")
	require.NoError(t, err)
	res, err := s.Import(ctx, bytes.NewReader(input), nil)
	require.NoError(t, err)
	require.Equal(t, int64(5004), res.Events)
	rep, err := s.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), "verify: %v", rep.Problems)
}
