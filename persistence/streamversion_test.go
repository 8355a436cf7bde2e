package persistence

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStreamVersionSearchesTheStreamIndex: StreamVersion's one query is a
// search of the (stream_id, stream_version) index, not a scan of the log.
func TestStreamVersionSearchesTheStreamIndex(t *testing.T) {
	t.Parallel()
	s, err := OpenMemory(t.Context())
	require.NoError(t, err)
	defer s.Close()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+s.stmts.head(s.d, 1, false), "thread:t1", "thread:t1")
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	got := strings.Join(plan, "; ")
	require.Contains(t, got, "SEARCH events USING COVERING INDEX idx_events_stream (stream_id=?)")
	require.NotContains(t, got, "SCAN events")
}
