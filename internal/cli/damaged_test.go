package cli

import (
	"database/sql"
	"encoding/binary"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVerifyDamagedFile: verify lists what SQLite's integrity check finds
// in a file whose index on event_id disagrees with the events table (a
// replay and the projections see nothing wrong there), and exits 1 saying
// that the database is damaged, which rebuild cannot repair.
func TestVerifyDamagedFile(t *testing.T) {
	t.Parallel()
	e, _ := demoEnv(t)
	require.Equal(t, "OK: 393 events in 8 streams; integrity_check finds no damage, sequences and versions without gaps, every payload decodes, the projections equal a rebuild.\n",
		e.ok("verify"))

	// The demo's store is closed and its WAL checkpointed into the file.
	db, err := sql.Open("sqlite", e.db)
	require.NoError(t, err)
	var page, size int64
	require.NoError(t, db.QueryRow("SELECT pageno FROM dbstat WHERE name = 'events_event_id_key' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1").Scan(&page))
	require.NoError(t, db.QueryRow("PRAGMA page_size").Scan(&size))
	require.NoError(t, db.Close())
	_, err = os.Stat(e.db + "-wal")
	require.ErrorIs(t, err, os.ErrNotExist)
	b, err := os.ReadFile(e.db)
	require.NoError(t, err)
	p := b[(page-1)*size : page*size]
	at := int(binary.BigEndian.Uint16(p[8:])) // the first cell
	loc := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindIndex(p[at:])
	require.NotNil(t, loc)
	p[at+loc[1]-1] ^= 0x01 // another hex digit of the same event id: '0'↔'1', 'a'↔'`'…
	require.NoError(t, os.WriteFile(e.db, b, 0o600))

	r := e.run("verify")
	require.Equal(t, ExitFailure, r.code, r.stderr)
	require.Regexp(t, `^393 events in 8 streams; 1 problem:\n  integrity: row \d+ missing from index events_event_id_key\n$`, r.stdout)
	require.Equal(t, "peon-store: verify: the database is damaged (1 problem listed above); restore it from a backup, or export what still reads into a new store\n", r.stderr)
	require.True(t, strings.HasPrefix(e.ok("threads"), "THREAD"), "the views still read")
}
