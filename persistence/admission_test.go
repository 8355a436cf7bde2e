package persistence_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// TestIDLimitMovesBetweenEngines: a SQLite log whose ids are as long as
// MaxIDBytes allows imports into PostgreSQL, whose btree refuses index
// entries over 2,704 bytes; ids one byte longer are refused by SQLite
// already, so such a log cannot be written in the first place.
func TestIDLimitMovesBetweenEngines(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg, err := persistence.Open(ctx, dbtest.PostgresSchema(t))
	require.NoError(t, err)
	defer pg.Close()
	lite, err := persistence.Open(ctx, dbtest.SQLiteFile(t))
	require.NoError(t, err)
	defer lite.Close()

	// Random letters, which PostgreSQL cannot compress below its limit.
	id := func(seed byte) string {
		var b strings.Builder
		x := uint32(seed) * 2654435761
		for b.Len() < persistence.MaxIDBytes {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[x%36])
		}
		return b.String()
	}
	thread, turn, ref := id(1), id(2), id(3)
	at := persistencetest.T0
	events := []orchestration.Event{
		orchestration.ThreadCreated{ThreadID: thread, ProjectID: id(4), Title: "t", Model: "m", At: at},
		orchestration.TurnStarted{ThreadID: thread, TurnID: turn, At: at},
		orchestration.CheckpointCreated{ThreadID: thread, TurnID: turn, GitRef: ref, At: at},
		orchestration.CheckpointReverted{ThreadID: thread, GitRef: ref, At: at},
	}
	_, err = lite.Append(ctx, &persistence.AppendOpts{CommandID: id(5), CorrelationID: id(6)}, events...)
	require.NoError(t, err)
	var export bytes.Buffer
	_, err = lite.Export(ctx, &export, nil)
	require.NoError(t, err)
	_, err = pg.Import(ctx, bytes.NewReader(export.Bytes()), nil)
	require.NoError(t, err, "a SQLite export at the id limit imports into PostgreSQL")
	var again bytes.Buffer
	_, err = pg.Export(ctx, &again, nil)
	require.NoError(t, err)
	require.Equal(t, export.String(), again.String())

	for name, s := range map[string]*persistence.Store{"SQLite": lite, "PostgreSQL": pg} {
		_, err := s.Append(ctx, nil, orchestration.TurnStarted{ThreadID: thread, TurnID: id(7) + "x", At: at})
		require.ErrorIs(t, err, persistence.ErrInvalidEvent, "%s refuses an id over the limit", name)
	}
}
