package persistence_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/peontest"
	"github.com/peonhq/peon/persistence"
)

// TestSpecForms runs the API of SPEC.md's code blocks written as SPEC
// writes it (the same assignments, so a changed signature fails to
// compile here) and checks what each returns.
func TestSpecForms(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Microsecond)

	store, err := persistence.OpenMemory(ctx) // private in-memory SQLite, migrated
	require.NoError(t, err)
	defer store.Close()

	opts := &persistence.AppendOpts{
		ExpectedVersions: map[string]int64{orchestration.ProjectStream("p"): persistence.NoStream},
		CommandID:        "create-p", CorrelationID: "corr", CausationID: "cause",
	}
	recs, err := store.Append(ctx, opts,
		orchestration.ProjectCreated{ProjectID: "p", Name: "peon", WorkspaceRoot: "/src/peon", At: at},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "spec", Model: "m", At: at},
		orchestration.ThreadDeleted{ThreadID: "t", At: at})
	require.NoError(t, err)
	require.Len(t, recs, 3)
	rec := recs[0]
	var (
		sequence, version               int64
		eventID, streamID, typ          string
		event                           orchestration.Event
		occurred, recorded              time.Time
		command, correlation, causation string
	)
	sequence, eventID, streamID, version, typ, event = rec.Sequence, rec.EventID, rec.StreamID, rec.StreamVersion, rec.Type, rec.Event
	occurred, recorded, command, correlation, causation = rec.OccurredAt, rec.RecordedAt, rec.CommandID, rec.CorrelationID, rec.CausationID
	require.Equal(t, int64(1), sequence)
	require.NotEmpty(t, eventID)
	require.Equal(t, "project:p", streamID)
	require.Equal(t, int64(1), version)
	require.Equal(t, "project.created", typ)
	require.Equal(t, "peon", event.(orchestration.ProjectCreated).Name)
	require.True(t, occurred.Equal(at))
	require.False(t, recorded.IsZero())
	require.Equal(t, []string{"create-p", "corr", "cause"}, []string{command, correlation, causation})

	n := 0
	for rec, err := range store.ReplayAll(ctx) { // iter.Seq2[persistence.Recorded, error]
		require.NoError(t, err)
		n++
		require.Equal(t, int64(n), rec.Sequence)
	}
	require.Equal(t, 3, n)
	n = 0
	for rec, err := range store.ReplayFrom(ctx, 3) { // sequence >= seq
		require.NoError(t, err)
		require.Equal(t, int64(3), rec.Sequence)
		n++
	}
	require.Equal(t, 1, n)
	n = 0
	for rec, err := range store.ReadStream(ctx, "thread:t", 2) {
		require.NoError(t, err)
		require.Equal(t, "thread.deleted", rec.Type)
		n++
	}
	require.Equal(t, 1, n)
	for rec, err := range store.Subscribe(ctx, 2) { // every event after `after`, then live ones, until ctx ends
		require.NoError(t, err)
		require.Equal(t, int64(3), rec.Sequence)
		break
	}
	head, err := store.Head(ctx) // last sequence, 0 when empty
	require.NoError(t, err)
	require.Equal(t, int64(3), head)
	var client *ent.Client = store.Client() // the *ent.Client, for application queries
	require.Equal(t, 1, client.Project.Query().CountX(ctx))

	_, err = store.Append(ctx, opts, orchestration.ProjectRenamed{ProjectID: "p", Name: "other", At: at})
	require.True(t, errors.Is(err, persistence.ErrCommandConflict)) // CommandID stored before with other events
	v, err := store.StreamVersion(ctx, "thread:t")                  // current version, NoStream when none
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	v, err = store.StreamVersion(ctx, "thread:none")
	require.NoError(t, err)
	require.Equal(t, persistence.NoStream, v)

	st, err := store.Stats(ctx) // (*Stats, error)
	require.NoError(t, err)
	var _ *persistence.Stats = st
	require.Equal(t, int64(3), st.Events)
	seq, d := head, time.Hour
	crep, err := store.Compact(ctx, &persistence.CompactOpts{Until: seq, OlderThan: d})
	require.NoError(t, err)
	require.Zero(t, crep.Events, "no streamed reply to fold")
	var w bytes.Buffer
	cutoff := time.Now().UTC().Add(-24 * time.Hour)
	prep, err := store.Prune(ctx, &persistence.PruneOpts{DeletedBefore: cutoff, ArchivedBefore: cutoff, Archive: &w})
	require.NoError(t, err)
	require.Equal(t, int64(1), prep.Streams, "the deleted thread")
	require.NotZero(t, w.Len(), "its events archived")
	_, err = store.Append(ctx, nil, orchestration.ThreadRenamed{ThreadID: "t", Title: "back", At: at})
	require.True(t, errors.Is(err, persistence.ErrStreamPruned)) // append to a stream removed by retention
	err = store.Maintain(ctx, persistence.Retention{CompactAfter: time.Hour, PruneDeletedAfter: 24 * time.Hour, PruneArchivedAfter: 48 * time.Hour})
	require.NoError(t, err)
	// The name only: when it is returned is TestPostgresAppendOutcomeUnknown's.
	var _ error = persistence.ErrUnknownOutcome // commit sent, outcome could not be learned

	var _ *persistence.Store = store // the three Open* functions return a *persistence.Store
	dataDir := filepath.Join(t.TempDir(), "data")
	byDir, err := persistence.OpenDir(ctx, dataDir) // dataDir/peon.db; dir 0700 and file 0600, created if absent
	require.NoError(t, err)
	require.NoError(t, byDir.Close())
	fi, err := os.Stat(dataDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dataDir, "peon.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	for _, dsn := range []string{filepath.Join(dataDir, "peon.db"), "sqlite://" + filepath.Join(dataDir, "peon.db")} {
		byDSN, err := persistence.Open(ctx, dsn) // a SQLite path or "sqlite://…", or "postgres://…"
		require.NoError(t, err, dsn)
		head, err = byDSN.Head(ctx)
		require.NoError(t, err)
		require.Zero(t, head)
		require.NoError(t, byDSN.Close())
	}

	withOpts, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{
		Logger: slog.New(slog.DiscardHandler), TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider: metricnoop.NewMeterProvider(), Retention: &persistence.Retention{},
	})
	require.NoError(t, err)
	require.NoError(t, withOpts.Close())

	s := peontest.Open(t) // package github.com/peonhq/peon/peontest
	head, err = s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
}
