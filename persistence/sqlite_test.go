package persistence_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:            func(t *testing.T) string { return ":memory:" },
		SetVerifyProgress: persistence.SetVerifyProgress,
		ObserveGroups:     persistence.SetGroupObserver,
		FailProjection:    persistence.SetProjectionFault,
	})
}

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:            func(t *testing.T) string { return dbtest.SQLiteFile(t) },
		Durable:           true,
		SetVerifyProgress: persistence.SetVerifyProgress,
		ObserveGroups:     persistence.SetGroupObserver,
		FailProjection:    persistence.SetProjectionFault,
		Disrupt:           disruptSQLite,
	})
}

// disruptSQLite makes every statement on the events table of the file at
// path fail for 100 ms ("no such table: events"), the nearest a SQLite
// file comes to a connection that a server terminates: it renames the
// table away and back.
func disruptSQLite(t *testing.T, path string) {
	t.Helper()
	db := rawDB(t, path)
	_, err := db.Exec("ALTER TABLE events RENAME TO events_away")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	_, err = db.Exec("ALTER TABLE events_away RENAME TO events")
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

// TestAppendTxBesideAppendDoesNotDeadlock: on the single-connection
// in-memory store, an Append of a new statement shape waits for the
// connection that a caller's transaction holds, without holding anything
// that transaction needs.
func TestAppendTxBesideAppendDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	tx, err := s.Client().Tx(ctx)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, nil, // three streams: a shape not prepared yet
			orchestration.ProjectCreated{ProjectID: "a", Name: "a", WorkspaceRoot: "/a", At: persistencetest.T0},
			orchestration.ProjectCreated{ProjectID: "b", Name: "b", WorkspaceRoot: "/b", At: persistencetest.T0},
			orchestration.ProjectCreated{ProjectID: "c", Name: "c", WorkspaceRoot: "/c", At: persistencetest.T0})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Append wait for the connection
	_, err = s.AppendTx(ctx, tx, nil,
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "a", Title: "t", Model: "m", At: persistencetest.T0},
		orchestration.SettingChanged{Key: "k", Value: []byte("1"), At: persistencetest.T0},
		orchestration.ProjectRenamed{ProjectID: "z", Name: "z", At: persistencetest.T0})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Append and AppendTx deadlocked")
	}
}

// TestDamagedTimestampIsTheRowsDecodeError: a recorded_at no layout reads
// is reported for its row; the rows around it are yielded.
func TestDamagedTimestampIsTheRowsDecodeError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()[:3]...)
	require.NoError(t, err)
	_, err = s.Client().ExecContext(ctx, "UPDATE events SET recorded_at = 'garbage' WHERE sequence = 2")
	require.NoError(t, err)
	var seqs []int64
	var bad []int64
	for rec, err := range s.ReplayAll(ctx) {
		var de *persistence.DecodeError
		if errors.As(err, &de) {
			bad = append(bad, de.Sequence)
			require.Contains(t, de.Error(), "recorded_at")
			continue
		}
		require.NoError(t, err)
		seqs = append(seqs, rec.Sequence)
	}
	require.Equal(t, []int64{1, 3}, seqs)
	require.Equal(t, []int64{2}, bad)
}
