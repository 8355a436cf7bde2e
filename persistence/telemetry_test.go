package persistence_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/persistence"
)

// logRecorder is a slog.Handler that keeps every record, at every level.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

// take returns the records so far and forgets them.
func (h *logRecorder) take() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records
	h.records = nil
	return r
}

// find returns the records whose message is msg.
func find(recs []logRecord, msg string) []logRecord {
	var out []logRecord
	for _, r := range recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

func messages(recs []logRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.msg)
	}
	return out
}

func TestLoggerMigrationsAndOpen(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	s, err := persistence.OpenWith(t.Context(), ":memory:", &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	recs := logs.take()
	applied := find(recs, "peon: migration applied")
	require.NotEmpty(t, applied, "one log line per migration file; got %q", messages(recs))
	require.Equal(t, "20261128130707", applied[0].attrs["version"])
	require.Equal(t, "init", applied[0].attrs["description"])
	require.NotEmpty(t, applied[0].attrs["duration"])
	require.Equal(t, "20261202154920", applied[1].attrs["version"])
	require.Equal(t, "compactions", applied[1].attrs["description"])
	require.Equal(t, "20261202160558", applied[2].attrs["version"])
	require.Equal(t, "message_chunks", applied[2].attrs["description"])
	require.Equal(t, "20261202164512", applied[3].attrs["version"])
	require.Equal(t, "20261202170200", applied[4].attrs["version"])
	require.Equal(t, "message_chunks_by_sequence", applied[4].attrs["description"])
	opened := find(recs, "peon: store opened")
	require.Len(t, opened, 1)
	require.Equal(t, "sqlite", opened[0].attrs["dialect"])
	require.Equal(t, ":memory:", opened[0].attrs["target"])

	// Opening a store that has every migration applies none.
	path := filepath.Join(t.TempDir(), "peon.db")
	for i := range 2 {
		s, err := persistence.OpenWith(t.Context(), path, &persistence.Options{Logger: slog.New(logs)})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.Len(t, find(logs.take(), "peon: migration applied"), (1-i)*len(applied), "open %d", i+1)
	}
}

func TestLoggerNotOnAppend(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	s, err := persistence.OpenWith(t.Context(), ":memory:", &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	logs.take()
	for i := range 200 {
		_, err := s.Append(t.Context(), nil, benchEvent(i))
		require.NoError(t, err)
	}
	_, err = s.Append(t.Context(), &persistence.AppendOpts{ExpectedVersions: map[string]int64{benchEvent(0).StreamID(): 1}}, benchEvent(200))
	require.ErrorIs(t, err, persistence.ErrVersionConflict)
	require.Empty(t, messages(logs.take()), "Append logs nothing, at any level")
}

// Not parallel: it sets how often progress is logged, for the package.
func TestLoggerRebuildProgress(t *testing.T) {
	defer persistence.SetProgressEvery(0)() // a line for every page
	for _, where := range []string{"Memory", "File"} {
		t.Run(where, func(t *testing.T) {
			dsn := ":memory:"
			if where == "File" {
				dsn = filepath.Join(t.TempDir(), "peon.db")
			}
			logs := &logRecorder{}
			s, err := persistence.OpenWith(t.Context(), dsn, &persistence.Options{Logger: slog.New(logs)})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Append(t.Context(), nil, benchEvents(0, 2500)...)
			require.NoError(t, err)
			logs.take()

			var res persistence.RebuildResult
			require.NoError(t, s.Rebuild(t.Context(), &persistence.RebuildOpts{Result: &res}))
			recs := logs.take()
			require.Len(t, find(recs, "peon: projection rebuild started"), 1, "%q", messages(recs))
			progress := find(recs, "peon: projection rebuild progress")
			require.NotEmpty(t, progress, "%q", messages(recs))
			require.Equal(t, "2500", progress[0].attrs["events"])
			done := find(recs, "peon: projection rebuild done")
			require.Len(t, done, 1)
			require.Equal(t, "2500", done[0].attrs["events"])
			require.Equal(t, "0", done[0].attrs["undecodable"])
			require.Equal(t, "0", done[0].attrs["missing"])
			require.NotEmpty(t, done[0].attrs["duration"])
		})
	}
}

// Not parallel: it sets how often progress is logged, for the package.
func TestLoggerCatchUp(t *testing.T) {
	defer persistence.SetProgressEvery(0)()
	path := filepath.Join(t.TempDir(), "peon.db")
	bare, err := persistence.OpenWith(t.Context(), path, &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	_, err = bare.Append(t.Context(), nil, benchEvents(0, 2500)...)
	require.NoError(t, err)
	require.NoError(t, bare.Close())

	logs := &logRecorder{}
	s, err := persistence.OpenWith(t.Context(), path, &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	recs := logs.take()
	require.Len(t, find(recs, "peon: projection catch-up started"), 1, "%q", messages(recs))
	require.NotEmpty(t, find(recs, "peon: projection catch-up progress"), "%q", messages(recs))
	done := find(recs, "peon: projection catch-up done")
	require.Len(t, done, 1, "%q", messages(recs))
	require.Equal(t, "2500", done[0].attrs["events"])
	require.Len(t, find(recs, "peon: store opened"), 1)

	// Projections at the head: opening logs no catch-up.
	require.NoError(t, s.Close())
	logs.take()
	s2, err := persistence.OpenWith(t.Context(), path, &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, []string{"peon: store opened"}, messages(logs.take()))
}

func TestLoggerVerifyExportImport(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	opts := &persistence.Options{Logger: slog.New(logs)}
	s, err := persistence.OpenWith(t.Context(), ":memory:", opts)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(t.Context(), nil, benchEvents(0, 30)...)
	require.NoError(t, err)
	logs.take()

	rep, err := s.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, rep.OK())
	var buf strings.Builder
	_, err = s.Export(t.Context(), &buf, nil)
	require.NoError(t, err)
	other, err := persistence.OpenWith(t.Context(), ":memory:", opts)
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Import(t.Context(), strings.NewReader(buf.String()), nil)
	require.NoError(t, err)

	recs := logs.take()
	for _, op := range []string{"verify", "export", "import"} {
		done := find(recs, "peon: "+op+" done")
		require.Len(t, done, 1, "%s: %q", op, messages(recs))
		require.Equal(t, "30", done[0].attrs["events"], op)
	}
	require.Equal(t, "0", find(recs, "peon: verify done")[0].attrs["problems"])

	// A failure is a warning with the error.
	require.NoError(t, s.Close())
	_, err = s.Export(t.Context(), &buf, nil)
	require.ErrorIs(t, err, persistence.ErrClosed)
	failed := find(logs.take(), "peon: export failed")
	require.Len(t, failed, 1)
	require.Equal(t, slog.LevelWarn, failed[0].level)
	require.Contains(t, failed[0].attrs["err"], "closed")
}

func TestLoggerSubscriptionRetry(t *testing.T) {
	t.Parallel()
	logs := &logRecorder{}
	path := filepath.Join(t.TempDir(), "peon.db")
	s, err := persistence.OpenWith(t.Context(), path, &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(t.Context(), nil, benchEvents(0, 3)...)
	require.NoError(t, err)
	logs.take()

	// A read that fails (the events table is gone) is retried and logged.
	_, err = s.Client().ExecContext(t.Context(), "ALTER TABLE events RENAME TO events_away")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, err := range s.SubscribeWith(ctx, 0, &persistence.SubscribeOpts{Resume: true, RetryMin: time.Millisecond}) {
		var re *persistence.RetryError
		require.ErrorAs(t, err, &re)
		break
	}
	retried := find(logs.take(), "peon: subscription read failed; retrying")
	require.Len(t, retried, 1)
	require.Equal(t, slog.LevelWarn, retried[0].level)
	require.Contains(t, retried[0].attrs["err"], "events")
	require.Equal(t, "1", retried[0].attrs["attempt"])
}

func TestListenerReconnectLogged(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresSchema(t)
	logs := &logRecorder{}
	s, err := persistence.OpenWith(t.Context(), dsn, &persistence.Options{Logger: slog.New(logs)})
	require.NoError(t, err)
	defer s.Close()

	// The listener's backend is the one whose last statement was LISTEN on
	// this schema's channel.
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var channel string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT 'peon_events_' || 'events'::regclass::oid").Scan(&channel))
	listen := `LISTEN "` + channel + `"`
	var pid int
	require.Eventually(t, func() bool {
		return conn.QueryRow(t.Context(), "SELECT pid FROM pg_stat_activity WHERE query = $1", listen).Scan(&pid) == nil
	}, 10*time.Second, 10*time.Millisecond, "no backend listens on %s", channel)
	_, err = conn.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)

	var recs []logRecord
	require.Eventually(t, func() bool {
		recs = append(recs, logs.take()...)
		return len(find(recs, "peon: PostgreSQL listener reconnected")) > 0
	}, 10*time.Second, 10*time.Millisecond, "%q", messages(recs))
	failed := find(recs, "peon: PostgreSQL listener failed; reconnecting")
	require.NotEmpty(t, failed, "%q", messages(recs))
	require.Equal(t, slog.LevelWarn, failed[0].level)
	require.Contains(t, failed[0].attrs["err"], "wait for notifications")
	i := slices.IndexFunc(recs, func(r logRecord) bool { return r.msg == "peon: PostgreSQL listener failed; reconnecting" })
	j := slices.IndexFunc(recs, func(r logRecord) bool { return r.msg == "peon: PostgreSQL listener reconnected" })
	require.Less(t, i, j)
}

// Not parallel: testing.AllocsPerRun refuses parallel tests.
func TestTelemetryOffCostsNothing(t *testing.T) {
	require.Zero(t, testing.AllocsPerRun(100, persistence.TelemetryOff(benchEvents(0, 3))),
		"without a TracerProvider and a MeterProvider, Append's telemetry allocates nothing")
}

// BenchmarkTelemetryOff is the telemetry work of one Append (and one
// replay page) without a TracerProvider and a MeterProvider.
func BenchmarkTelemetryOff(b *testing.B) {
	off := persistence.TelemetryOff(benchEvents(0, 1))
	for b.Loop() {
		off()
	}
}

// The OpenTelemetry SDK and exporters are for tests only, in the module
// internal/otelcheck: an application that imports peon inherits every
// module of peon's go.mod, so none of them may be there.
func TestGoModHasNoOpenTelemetrySDK(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	for line := range strings.Lines(string(mod)) {
		for _, banned := range []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/contrib"} {
			require.NotContains(t, line, banned, "go.mod requires %s; keep the SDK in internal/otelcheck", banned)
		}
	}
	require.Contains(t, string(mod), "go.opentelemetry.io/otel/trace ", "the API is required")
}
