package persistence_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// damagedStore writes a store of the catalogue and 3,000 deltas to a file
// in dir, closes it (which checkpoints the WAL into the file) and returns
// the file's path.
func damagedStore(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), persistence.DBFileName)
	s, err := persistence.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Deltas("t1", 3000)...)
	require.NoError(t, err)
	verifyProjections(t, ctx, s)
	require.NoError(t, s.Close())
	_, err = os.Stat(path + "-wal")
	require.ErrorIs(t, err, os.ErrNotExist, "the WAL was not checkpointed into the file")
	return path
}

// leafPages returns the numbers of the leaf pages of the b-tree name
// (a table or an index) in the SQLite file at path, and its page size.
func leafPages(t *testing.T, path, name string) (pages []int64, pageSize int64) {
	t.Helper()
	db := rawDB(t, path)
	rows, err := db.Query("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", name)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var p int64
		require.NoError(t, rows.Scan(&p))
		pages = append(pages, p)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, pages, "no leaf page of %s", name)
	require.NoError(t, db.QueryRow("PRAGMA page_size").Scan(&pageSize))
	require.NoError(t, db.Close())
	return pages, pageSize
}

// editPage rewrites page number pageNo of the file at path with edit.
func editPage(t *testing.T, path string, pageNo, pageSize int64, edit func(page []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	edit(b[(pageNo-1)*pageSize : pageNo*pageSize])
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

var uuidText = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestBadDamagedFile: Verify runs SQLite's own integrity check and
// reports what it finds, also where a replay and the comparison of the
// projections with a rebuild see nothing wrong (before, it said OK on
// files that SQLite calls corrupt). On a file damaged where the log is
// read, Rebuild and Verify return an error or a report instead of
// panicking.
func TestBadDamagedFile(t *testing.T) {
	t.Parallel()

	// The event ids of three cells of a leaf page of the unique index on
	// event_id are changed: the page is well formed, only its keys
	// disagree with the table. Nothing but the integrity check reads that
	// index.
	t.Run("IndexKeys", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := damagedStore(t)
		pages, size := leafPages(t, path, "events_event_id_key")
		editPage(t, path, pages[len(pages)/2], size, func(page []byte) {
			cells := int(binary.BigEndian.Uint16(page[3:5]))
			require.Greater(t, cells, 10)
			for _, c := range []int{1, cells / 2, cells - 1} {
				at := int(binary.BigEndian.Uint16(page[8+2*c:]))
				loc := uuidText.FindIndex(page[at:])
				require.NotNil(t, loc, "no event id in cell %d", c)
				last := &page[at+loc[1]-1] // the id's last hex digit
				if *last == '0' {
					*last = '1'
				} else {
					*last = '0'
				}
			}
		})
		s, err := persistence.Open(ctx, path)
		require.NoError(t, err)
		defer s.Close()
		n := 0
		for _, err := range s.ReplayAll(ctx) {
			require.NoError(t, err)
			n++
		}
		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, head, int64(n), "the replay reads the whole log")

		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.Equal(t, "integrity_check", rep.Integrity)
		require.False(t, rep.OK(), "Verify found nothing on a damaged file")
		var msgs []string
		for _, p := range rep.Problems {
			require.Equal(t, persistence.ProblemIntegrity, p.Kind, "only the integrity check finds something: %v", p)
			msgs = append(msgs, p.Detail)
		}
		require.Len(t, msgs, 3, "%q", msgs)
		for _, m := range msgs {
			require.Regexp(t, `^row \d+ missing from index events_event_id_key$`, m)
		}
		// A rebuild does not read the index: it succeeds, and Verify still
		// reports the damage.
		require.NoError(t, s.Rebuild(ctx, nil))
		rep, err = s.Verify(ctx)
		require.NoError(t, err)
		require.Len(t, rep.Problems, 3)
	})

	// A leaf page of the events table gets a page type that does not
	// exist: reading the log there fails. Rebuild returns that error;
	// Verify reports the integrity check's findings and that the checks
	// after it stopped.
	t.Run("TablePage", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		path := damagedStore(t)
		pages, size := leafPages(t, path, "events")
		editPage(t, path, pages[len(pages)/2], size, func(page []byte) { page[0] = 0x55 })
		s, err := persistence.Open(ctx, path)
		require.NoError(t, err, "the projections stand at the head: opening reads no event")
		defer s.Close()

		err = s.Rebuild(ctx, nil)
		require.Error(t, err)
		require.ErrorContains(t, err, "malformed")
		rep, err := s.Verify(ctx)
		require.NoError(t, err)
		require.False(t, rep.OK())
		for _, p := range rep.Problems {
			t.Logf("%q", p.String())
		}
		require.Equal(t, persistence.ProblemIntegrity, rep.Problems[0].Kind)
		last := rep.Problems[len(rep.Problems)-1]
		require.Equal(t, persistence.ProblemIntegrity, last.Kind)
		require.Contains(t, last.Detail, "Verify stopped")
		require.Contains(t, last.Detail, "malformed")
		_, err = s.Append(ctx, nil, orchestration.SettingChanged{Key: "after", Value: []byte("1"), At: persistencetest.T0})
		t.Logf("append after the damage: %v", err)
	})

	// A cancelled Verify of a damaged file is still an error that wraps
	// the context's.
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		path := damagedStore(t)
		s, err := persistence.Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = s.Verify(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
}
