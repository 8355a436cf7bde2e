package persistencetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// promptly is how long an open or a read may take while another store
// holds the write lock: far under SQLite's 30 s busy timeout.
const promptly = 5 * time.Second

// holdWriteLock takes the write lock of s's database and holds it until
// the test ends: an AppendTx in a transaction left open, which on SQLite
// began IMMEDIATE and on PostgreSQL holds the append lock.
func holdWriteLock(t *testing.T, s *setup) {
	t.Helper()
	tx, err := s.store.Client().Tx(s.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { tx.Rollback() })
	_, err = s.store.AppendTx(s.ctx, tx, nil, orchestration.SettingChanged{Key: "held", Value: json.RawMessage(`1`), At: T0})
	require.NoError(t, err)
}

func runLocks(t *testing.T, h Harness) {
	// Opening a migrated store whose projections stand at the head reads
	// and takes no write lock, so it does not wait for a writer; nor do
	// reads.
	t.Run("OpenAndReadWhileAnotherHoldsTheWriteLock", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store has no other store")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		holdWriteLock(t, s)

		ctx, cancel := context.WithTimeout(s.ctx, promptly)
		defer cancel()
		start := time.Now()
		other, err := persistence.Open(ctx, s.dsn)
		require.NoError(t, err, "open beside a held write lock")
		defer other.Close()
		head, err := other.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(len(Catalogue())), head)
		require.Len(t, collect(t, other.ReplayAll(ctx)), len(Catalogue()))
		views := readViews(t, &setup{ctx: ctx, store: other, dsn: s.dsn, h: h})
		require.NotEmpty(t, views.Threads)
		t.Logf("open and read beside a held write lock: %s", time.Since(start).Round(time.Millisecond))

		ro, err := persistence.OpenWith(ctx, s.dsn, &persistence.Options{ReadOnly: true})
		require.NoError(t, err, "read-only open beside a held write lock")
		defer ro.Close()
		rep, err := ro.Verify(ctx)
		require.NoError(t, err, "verify beside a held write lock")
		require.True(t, rep.OK(), "verify: %v", rep.Problems)

	})
}
