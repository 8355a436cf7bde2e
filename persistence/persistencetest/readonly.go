package persistencetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

func runReadOnly(t *testing.T, h Harness) {
	// A store opened with Options.ReadOnly reads, exports, verifies and
	// follows, and refuses every write with ErrReadOnly, writing nothing.
	t.Run("ReadsAndRefusesWrites", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store cannot be opened again")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		ro, err := persistence.OpenWith(s.ctx, s.dsn, &persistence.Options{ReadOnly: true})
		require.NoError(t, err)
		defer ro.Close()
		r := &setup{ctx: s.ctx, store: ro, dsn: s.dsn, h: h}

		require.Equal(t, readViews(t, s), readViews(t, r))
		require.Len(t, collect(t, ro.ReplayAll(s.ctx)), len(Catalogue()))
		var want, got bytes.Buffer
		_, err = s.store.Export(s.ctx, &want, nil)
		require.NoError(t, err)
		_, err = ro.Export(s.ctx, &got, nil)
		require.NoError(t, err)
		require.Equal(t, want.String(), got.String())
		requireVerified(t, r)

		ev := orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: T0}
		_, err = ro.Append(s.ctx, nil, ev)
		require.ErrorIs(t, err, persistence.ErrReadOnly)
		tx, err := ro.Client().Tx(s.ctx)
		if err == nil { // PostgreSQL begins; SQLite's IMMEDIATE begin is refused
			_, err = ro.AppendTx(s.ctx, tx, nil, ev)
			require.ErrorIs(t, err, persistence.ErrReadOnly)
			require.NoError(t, tx.Rollback())
		}
		_, err = ro.Import(s.ctx, strings.NewReader(""), &persistence.ImportOpts{Force: true})
		require.ErrorIs(t, err, persistence.ErrReadOnly)
		require.ErrorIs(t, ro.Rebuild(s.ctx, nil), persistence.ErrReadOnly)
		_, err = ro.CatchUp(s.ctx)
		require.ErrorIs(t, err, persistence.ErrReadOnly)
		// The database itself refuses writes on the store's connections.
		_, err = ro.Client().ExecContext(s.ctx, "DELETE FROM settings")
		require.Error(t, err)
		requireVerified(t, s)
		require.Equal(t, readViews(t, s), readViews(t, r))

		// Verify's temporary tables did not make the pool writable.
		for range 3 {
			_, err = ro.Client().ExecContext(s.ctx, "UPDATE settings SET value = '2'")
			require.Error(t, err)
		}

		// It follows what another store appends.
		_, err = s.store.Append(s.ctx, nil, ev)
		require.NoError(t, err)
		for rec, err := range ro.Subscribe(s.ctx, int64(len(Catalogue()))) {
			require.NoError(t, err)
			require.Equal(t, int64(len(Catalogue())+1), rec.Sequence)
			break
		}
	})

	// A read-only open refuses an empty database and leaves it empty.
	t.Run("RefusesAnEmptyDatabase", func(t *testing.T) {
		t.Parallel()
		dsn := h.NewDSN(t)
		_, err := persistence.OpenWith(t.Context(), dsn, &persistence.Options{ReadOnly: true})
		require.ErrorIs(t, err, persistence.ErrNotStore)
		var ne *persistence.NotStoreError
		require.ErrorAs(t, err, &ne)
		if !h.Durable {
			return
		}
		st, err := persistence.Migrations(t.Context(), dsn)
		require.NoError(t, err)
		for _, m := range st {
			require.False(t, m.Applied, "a read-only open applied %s", m.Version)
		}
	})
}
