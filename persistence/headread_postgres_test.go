package persistence_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestPostgresHeadReadIsOneDescent reads a long stream's version with the
// head read's generic plan (the one PostgreSQL keeps for a prepared
// statement after five runs) on a table it has no statistics of, as a new
// or busy store's is: the read must be one descent of the (stream_id,
// stream_version) index whatever the stream's length. MAX(stream_version)
// there was planned as an aggregate over every entry of the stream: each
// Append to a stream of n events read n index entries and their heap
// tuples (148 buffers for 3,600 events; the append of 9 events went from
// 0.02 to 0.35 ms of head read in 300 appends).
func TestPostgresHeadReadIsOneDescent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := dbtest.PostgresSchema(t)
	s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	defer s.Close()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	appendDeltas := func(n int) {
		for i := 0; i < n; i += 500 {
			evs := make([]orchestration.Event, min(500, n-i))
			for j := range evs {
				evs[j] = orchestration.MessageDelta{ThreadID: "long", TurnID: "u", MessageID: "m", Delta: fmt.Sprintf("token %d ", i+j), At: at}
			}
			_, err := s.Append(ctx, nil, evs...)
			require.NoError(t, err)
		}
	}
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer db.Close()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan")
	require.NoError(t, err)

	// The plans are made while the stream is short, as a pooled
	// connection's are when the store is new, and kept while it grows.
	appendDeltas(9)
	type head struct {
		name, args string
		first      bool
	}
	var heads []head
	for _, first := range []bool{true, false} {
		h := head{name: fmt.Sprintf("head_%v", first), args: "('thread:long', 'thread:long')", first: first}
		if first {
			h.args = "(NULL, 'thread:long', 'thread:long')"
		}
		_, err = conn.ExecContext(ctx, "PREPARE "+h.name+" AS "+persistence.HeadStatement(s, 1, first))
		require.NoError(t, err)
		var v int64
		require.NoError(t, conn.QueryRowContext(ctx, "EXECUTE "+h.name+h.args).Scan(dests(first, &v)...))
		require.Equal(t, int64(9), v)
		heads = append(heads, h)
	}
	const n = 6000
	appendDeltas(n - 9)
	for _, h := range heads {
		var plan string
		require.NoError(t, conn.QueryRowContext(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE "+h.name+h.args).Scan(&plan))
		var out []struct {
			Plan struct {
				SharedHit  int64 `json:"Shared Hit Blocks"`
				SharedRead int64 `json:"Shared Read Blocks"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(plan), &out))
		blocks := out[0].Plan.SharedHit + out[0].Plan.SharedRead
		require.LessOrEqual(t, blocks, int64(20), "first=%v: a head read of a %d-event stream read %d buffers; plan:\n%s", h.first, n, blocks, plan)
		var v int64
		require.NoError(t, conn.QueryRowContext(ctx, "EXECUTE "+h.name+h.args).Scan(dests(h.first, &v)...))
		require.Equal(t, int64(n), v)
	}
}

// dests are the scan targets of a head read: the last sequence and the
// command column first when first, then the version.
func dests(first bool, v *int64) []any {
	if first {
		var seq int64
		var cmd sql.NullInt64
		return []any{&seq, &cmd, v}
	}
	return []any{v}
}
