package otelcheck_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// bundle is what a test needs: a store wired to an in-memory span
// exporter and a manual metric reader.
type bundle struct {
	store  *persistence.Store
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	opts   *persistence.Options
}

func setup(t *testing.T, dsn string) *bundle {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	opts := &persistence.Options{TracerProvider: tp, MeterProvider: mp}
	s, err := persistence.OpenWith(t.Context(), dsn, opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return &bundle{store: s, spans: spans, reader: reader, opts: opts}
}

// named returns the ended spans called name, in the order they ended.
func (b *bundle) named(name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range b.spans.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// metric collects and returns the metric called name.
func (b *bundle) metric(t *testing.T, name string) (metricdata.Metrics, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, b.reader.Collect(t.Context(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				require.Equal(t, "github.com/peonhq/peon/persistence", sm.Scope.Name)
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func outcomeOf(set attribute.Set) string {
	v, _ := set.Value("peon.append.outcome")
	return v.AsString()
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func thread(id string, i int) orchestration.Event {
	return orchestration.ThreadRenamed{ThreadID: id, Title: "title " + strings.Repeat("x", i%7), At: t0.Add(time.Duration(i) * time.Second)}
}

func threads(n int) []orchestration.Event {
	evs := make([]orchestration.Event, n)
	for i := range evs {
		evs[i] = thread("t1", i)
	}
	return evs
}

func TestAppendSpansAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, ":memory:")
	ctx := t.Context()
	b.spans.Reset()

	recs, err := b.store.Append(ctx, &persistence.AppendOpts{CommandID: "c1"}, thread("t1", 1), thread("t2", 2), thread("t1", 3))
	require.NoError(t, err)
	_, err = b.store.Append(ctx, &persistence.AppendOpts{CommandID: "c1"}, thread("t1", 1), thread("t2", 2), thread("t1", 3))
	require.NoError(t, err)
	_, err = b.store.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t1": 7}}, thread("t1", 4))
	require.ErrorIs(t, err, persistence.ErrVersionConflict)
	_, err = b.store.Append(ctx, nil, orchestration.ThreadRenamed{ThreadID: "t1"}) // no At
	require.ErrorIs(t, err, persistence.ErrInvalidEvent)

	spans := b.named("peon.append")
	require.Len(t, spans, 4)
	first := spans[0]
	require.Equal(t, int64(3), attr(first, "peon.append.events").AsInt64())
	require.Equal(t, int64(2), attr(first, "peon.append.streams").AsInt64())
	require.Equal(t, "appended", attr(first, "peon.append.outcome").AsString())
	require.Equal(t, recs[0].Sequence, attr(first, "peon.sequence.first").AsInt64())
	require.Equal(t, recs[2].Sequence, attr(first, "peon.sequence.last").AsInt64())
	require.Equal(t, "sqlite", attr(first, "db.system.name").AsString())
	require.Equal(t, codes.Unset, first.Status.Code)
	require.Equal(t, "duplicate", attr(spans[1], "peon.append.outcome").AsString())
	require.Equal(t, "version_conflict", attr(spans[2], "peon.append.outcome").AsString())
	require.Equal(t, codes.Error, spans[2].Status.Code)
	require.Contains(t, spans[2].Status.Description, "version conflict")
	require.Len(t, spans[2].Events, 1, "the error is recorded as a span event")
	require.Equal(t, "invalid", attr(spans[3], "peon.append.outcome").AsString())

	m, ok := b.metric(t, "peon.append.events")
	require.True(t, ok, "peon.append.events is exported")
	require.Equal(t, "{event}", m.Unit)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "a counter: %T", m.Data)
	require.True(t, sum.IsMonotonic)
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		got[outcomeOf(dp.Attributes)] += dp.Value
		v, _ := dp.Attributes.Value("db.system.name")
		require.Equal(t, "sqlite", v.AsString())
	}
	require.Equal(t, map[string]int64{"appended": 3, "duplicate": 3, "version_conflict": 1, "invalid": 1}, got)

	m, ok = b.metric(t, "peon.append.duration")
	require.True(t, ok, "peon.append.duration is exported")
	require.Equal(t, "s", m.Unit)
	hist, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "a histogram: %T", m.Data)
	counts := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		counts[outcomeOf(dp.Attributes)] += dp.Count
		require.Greater(t, dp.Sum, 0.0)
		require.Less(t, dp.Sum, 60.0, "seconds, not nanoseconds")
	}
	require.Equal(t, map[string]uint64{"appended": 1, "duplicate": 1, "version_conflict": 1, "invalid": 1}, counts)
}

func TestAppendTxSpan(t *testing.T) {
	t.Parallel()
	b := setup(t, ":memory:")
	tx, err := b.store.Client().Tx(t.Context())
	require.NoError(t, err)
	_, err = b.store.AppendTx(t.Context(), tx, nil, thread("t1", 1))
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	spans := b.named("peon.append")
	require.Len(t, spans, 1)
	require.Equal(t, "appended", attr(spans[0], "peon.append.outcome").AsString())
}

func TestReplayPageSpans(t *testing.T) {
	t.Parallel()
	b := setup(t, ":memory:")
	_, err := b.store.Append(t.Context(), nil, threads(2500)...)
	require.NoError(t, err)
	b.spans.Reset()
	n := 0
	for _, err := range b.store.ReplayAll(t.Context()) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 2500, n)
	pages := b.named("peon.replay.page")
	require.Len(t, pages, 3, "one span per page of 1,000 rows, not per event")
	for i, want := range []int64{1000, 1000, 500} {
		require.Equal(t, want, attr(pages[i], "peon.replay.events").AsInt64(), "page %d", i)
		require.Equal(t, int64(1+1000*i), attr(pages[i], "peon.replay.from").AsInt64(), "page %d", i)
	}
}

func TestOperationSpans(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "peon.db")
	bare, err := persistence.OpenWith(t.Context(), path, &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	_, err = bare.Append(t.Context(), nil, threads(1500)...)
	require.NoError(t, err)
	require.NoError(t, bare.Close())

	// Opening migrates (nothing pending) and catches the projections up.
	b := setup(t, path)
	migrate := b.named("peon.migrate")
	require.Len(t, migrate, 1)
	require.Equal(t, int64(0), attr(migrate[0], "peon.migrate.applied").AsInt64())
	catchUp := b.named("peon.catch_up")
	require.Len(t, catchUp, 1)
	require.Equal(t, int64(1500), attr(catchUp[0], "peon.catch_up.events").AsInt64())
	requireChildren(t, b, catchUp[0], "peon.replay.page", 2)

	b.spans.Reset()
	require.NoError(t, b.store.Rebuild(t.Context(), nil))
	rebuild := b.named("peon.rebuild")
	require.Len(t, rebuild, 1)
	require.Equal(t, int64(1500), attr(rebuild[0], "peon.rebuild.events").AsInt64())
	require.Equal(t, int64(0), attr(rebuild[0], "peon.rebuild.undecodable").AsInt64())
	requireChildren(t, b, rebuild[0], "peon.replay.page", 2)

	rep, err := b.store.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	verify := b.named("peon.verify")
	require.Len(t, verify, 1)
	require.Equal(t, int64(0), attr(verify[0], "peon.verify.problems").AsInt64())

	var buf strings.Builder
	_, err = b.store.Export(t.Context(), &buf, nil)
	require.NoError(t, err)
	export := b.named("peon.export")
	require.Len(t, export, 1)
	require.Equal(t, int64(1500), attr(export[0], "peon.export.events").AsInt64())

	other := setup(t, ":memory:")
	migrate = other.named("peon.migrate")
	require.Len(t, migrate, 1)
	files, err := fs.Glob(migrations.FS, "sqlite/*.sql")
	require.NoError(t, err)
	require.Equal(t, int64(len(files)), attr(migrate[0], "peon.migrate.applied").AsInt64(), "every migration file of a new database")
	_, err = other.store.Import(t.Context(), strings.NewReader(buf.String()), nil)
	require.NoError(t, err)
	imp := other.named("peon.import")
	require.Len(t, imp, 1)
	require.Equal(t, int64(1500), attr(imp[0], "peon.import.events").AsInt64())

	// A failed operation ends its span with the error.
	require.NoError(t, b.store.Close())
	_, err = b.store.Export(t.Context(), &buf, nil)
	require.ErrorIs(t, err, persistence.ErrClosed)
	export = b.named("peon.export")
	require.Len(t, export, 2)
	require.Equal(t, codes.Error, export[1].Status.Code)
}

// requireChildren checks that parent has n children called name.
func requireChildren(t *testing.T, b *bundle, parent tracetest.SpanStub, name string, n int) {
	t.Helper()
	got := 0
	for _, s := range b.named(name) {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			got++
		}
	}
	require.Equal(t, n, got, "%s spans under %s", name, parent.Name)
}

func TestSubscribeCatchUpSpanAndLag(t *testing.T) {
	t.Parallel()
	b := setup(t, ":memory:")
	_, err := b.store.Append(t.Context(), nil, threads(2500)...)
	require.NoError(t, err)
	_, ok := b.metric(t, "peon.subscribe.lag")
	require.False(t, ok, "no lag without a live subscription")
	b.spans.Reset()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var lag []int64
	for rec, err := range b.store.Subscribe(ctx, 0) {
		require.NoError(t, err)
		if rec.Sequence == 11 || rec.Sequence == 2001 {
			// The subscription has handed over the events before this one.
			m, ok := b.metric(t, "peon.subscribe.lag")
			require.True(t, ok, "peon.subscribe.lag is exported while subscribed")
			require.Equal(t, "{event}", m.Unit)
			g, ok := m.Data.(metricdata.Gauge[int64])
			require.True(t, ok, "a gauge: %T", m.Data)
			require.Len(t, g.DataPoints, 1)
			lag = append(lag, g.DataPoints[0].Value)
		}
		if rec.Sequence == 2500 {
			break
		}
	}
	require.Equal(t, []int64{2490, 500}, lag)
	_, ok = b.metric(t, "peon.subscribe.lag")
	require.False(t, ok, "no lag once the subscription ended")

	catchUp := b.named("peon.subscribe.catch_up")
	require.Len(t, catchUp, 1)
	require.Equal(t, int64(0), attr(catchUp[0], "peon.subscribe.after").AsInt64())
	require.Equal(t, int64(2501), attr(catchUp[0], "peon.subscribe.next").AsInt64())
	requireChildren(t, b, catchUp[0], "peon.replay.page", 3)
}

// A Maintain that prunes and compacts gives the space back once, after
// both (a peon.reclaim span under peon.maintain, none under its prune and
// compaction), and its Reclaimed is what that span gave back. A Prune of
// its own gives the space back itself.
func TestMaintainReclaimsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, filepath.Join(t.TempDir(), "peon.db"))
	now := time.Now().UTC()
	maintainable(t, b, now)
	st, err := b.store.Stats(t.Context())
	require.NoError(t, err)
	b.spans.Reset()
	rep, err := b.store.MaintainWithReport(t.Context(), persistence.Retention{CompactAfter: time.Hour, PruneDeletedAfter: 24 * time.Hour})
	require.NoError(t, err)
	after, err := b.store.Stats(t.Context())
	require.NoError(t, err)
	require.Equal(t, st.Database.Bytes-after.Database.Bytes, rep.Reclaimed, "what the file lost since before the prune")
	require.Equal(t, int64(1), rep.Prune.Streams)
	require.Equal(t, int64(399), rep.Compact.Events)
	maintain := b.named("peon.maintain")
	require.Len(t, maintain, 1)
	reclaims := b.named("peon.reclaim")
	require.Len(t, reclaims, 1, "Maintain gives the space back once")
	require.Equal(t, maintain[0].SpanContext.SpanID(), reclaims[0].Parent.SpanID(), "after its prune and compaction, not in them")
	require.Positive(t, rep.Reclaimed, "the pruned thread's and the folded deltas' pages")
	require.Equal(t, rep.Reclaimed, attr(reclaims[0], "peon.reclaim.bytes").AsInt64())
	require.False(t, attr(reclaims[0], "peon.reclaim.full").AsBool())
	require.Zero(t, rep.Prune.BytesReclaimed, "Maintain gives the prune's space back")
	require.Zero(t, rep.Compact.Reclaimed, "Maintain gives the compaction's space back")

	// On its own, a Prune gives back what it removed.
	_, err = b.store.Append(t.Context(), nil,
		orchestration.ThreadDeleted{ThreadID: "kept", At: now.Add(-48 * time.Hour)})
	require.NoError(t, err)
	b.spans.Reset()
	prune, err := b.store.Prune(t.Context(), &persistence.PruneOpts{DeletedBefore: now.Add(-24 * time.Hour), Vacuum: true})
	require.NoError(t, err)
	require.Equal(t, int64(1), prune.Streams)
	reclaims = b.named("peon.reclaim")
	require.Len(t, reclaims, 1)
	require.Equal(t, b.named("peon.prune")[0].SpanContext.SpanID(), reclaims[0].Parent.SpanID())
	require.True(t, attr(reclaims[0], "peon.reclaim.full").AsBool())
	require.Equal(t, prune.BytesReclaimed, attr(reclaims[0], "peon.reclaim.bytes").AsInt64())
}

// maintainable appends two threads of one long streamed reply each,
// completed 71 h before now; "gone" was deleted 48 h before now.
func maintainable(t *testing.T, b *bundle, now time.Time) {
	t.Helper()
	long := strings.Repeat("a streamed reply, one delta of it; ", 30)
	evs := []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "peon", WorkspaceRoot: "/src/peon", At: now.Add(-72 * time.Hour)},
	}
	for _, th := range []string{"gone", "kept"} {
		evs = append(evs,
			orchestration.ThreadCreated{ThreadID: th, ProjectID: "p", Title: th, Model: "m", At: now.Add(-72 * time.Hour)},
			orchestration.TurnStarted{ThreadID: th, TurnID: th + "-u", At: now.Add(-72 * time.Hour)},
			orchestration.MessageAdded{ThreadID: th, TurnID: th + "-u", MessageID: th + "-m", Role: orchestration.RoleAssistant, Streaming: true, At: now.Add(-72 * time.Hour)})
		for range 400 {
			evs = append(evs, orchestration.MessageDelta{ThreadID: th, TurnID: th + "-u", MessageID: th + "-m", Delta: long, At: now.Add(-72 * time.Hour)})
		}
		evs = append(evs, orchestration.MessageCompleted{ThreadID: th, TurnID: th + "-u", MessageID: th + "-m", At: now.Add(-71 * time.Hour)})
	}
	evs = append(evs, orchestration.ThreadDeleted{ThreadID: "gone", At: now.Add(-48 * time.Hour)})
	_, err := b.store.Append(t.Context(), nil, evs...)
	require.NoError(t, err)
}

// A Maintain whose compaction fails after its prune still gives the
// prune's space back (as the prune alone would have), and returns the
// compaction's error.
func TestMaintainFailedCompactionStillReclaims(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "peon.db")
	b := setup(t, path)
	now := time.Now().UTC()
	maintainable(t, b, now)
	execOn(t, path, "CREATE TRIGGER refuse_compactions BEFORE INSERT ON compactions BEGIN SELECT RAISE(ABORT, 'compactions refused by the test'); END")

	b.spans.Reset()
	_, err := b.store.MaintainWithReport(t.Context(), persistence.Retention{CompactAfter: time.Hour, PruneDeletedAfter: 24 * time.Hour})
	require.ErrorContains(t, err, "maintain: compact")
	require.ErrorContains(t, err, "compactions refused by the test")
	tombstones, err := b.store.Tombstones(t.Context())
	require.NoError(t, err)
	require.Len(t, tombstones, 1, "the prune went through")
	reclaims := b.named("peon.reclaim")
	require.Len(t, reclaims, 1, "the prune's space is given back")
	require.Positive(t, attr(reclaims[0], "peon.reclaim.bytes").AsInt64())
	st, err := b.store.Stats(t.Context())
	require.NoError(t, err)
	require.Zero(t, st.Database.FreePages)
}

// A Maintain that finds nothing to remove still gives back the free
// pages it finds (those a run cut short left, or deleted rows'), so that
// no space waits for a later removal.
func TestMaintainReclaimsFreePages(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "peon.db")
	b := setup(t, path)
	_, err := b.store.Append(t.Context(), nil, threads(10)...)
	require.NoError(t, err)
	execOn(t, path,
		"CREATE TABLE test_scratch (x TEXT)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO test_scratch SELECT hex(randomblob(1000)) FROM n",
		"DROP TABLE test_scratch")
	st, err := b.store.Stats(t.Context())
	require.NoError(t, err)
	require.Positive(t, st.Database.FreePages)

	b.spans.Reset()
	rep, err := b.store.MaintainWithReport(t.Context(), persistence.Retention{})
	require.NoError(t, err)
	require.Zero(t, rep.Events, "nothing to prune or fold")
	require.Len(t, b.named("peon.reclaim"), 1)
	after, err := b.store.Stats(t.Context())
	require.NoError(t, err)
	require.Zero(t, after.Database.FreePages)
	require.Equal(t, st.Database.Bytes-after.Database.Bytes, rep.Reclaimed)
	require.Positive(t, rep.Reclaimed)
}

// execOn runs queries on the SQLite file at path through a connection of
// its own, beside the store's.
func execOn(t *testing.T, path string, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, q := range queries {
		_, err = db.ExecContext(t.Context(), q)
		require.NoError(t, err, q)
	}
}
