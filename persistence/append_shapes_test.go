package persistence_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestAppendStatementShapes appends batches of the sizes and stream counts
// that take each path of the append's statements: prepared and unprepared
// shapes, more streams than one head read looks up, and more rows than
// one INSERT carries, on a private in-memory database (one connection),
// on a file and on PostgreSQL.
func TestAppendStatementShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	// renames returns one thread.renamed event for each of n threads.
	renames := func(n int, title string) []orchestration.Event {
		evs := make([]orchestration.Event, n)
		for i := range evs {
			evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("t%04d", i), Title: title, At: at}
		}
		return evs
	}
	for name, dsn := range map[string]func(t *testing.T) string{
		"Memory": func(*testing.T) string { return ":memory:" },
		"File":   func(t *testing.T) string { return dbtest.SQLiteFile(t) },
		// Pipelined: several head reads, several INSERTs, in one round trip.
		"Postgres": func(t *testing.T) string { return dbtest.PostgresSchema(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := persistence.OpenWith(ctx, dsn(t), &persistence.Options{NoProjections: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })

			var want int64
			for round, n := range []int{1, 3, 8, 9, 501, 1203, 1203, 1} {
				recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: fmt.Sprintf("c%d", round)}, renames(n, fmt.Sprint(round))...)
				require.NoError(t, err)
				require.Len(t, recs, n)
				for i, r := range recs {
					want++
					require.Equal(t, want, r.Sequence)
					require.Equal(t, fmt.Sprintf("thread:t%04d", i), r.StreamID)
				}
			}
			// Each thread's version is the number of batches that reached it.
			versions := map[string]int64{}
			got := 0
			for r, err := range s.ReplayAll(ctx) {
				require.NoError(t, err)
				versions[r.StreamID]++
				require.Equal(t, versions[r.StreamID], r.StreamVersion, "sequence %d", r.Sequence)
				got++
			}
			require.EqualValues(t, want, got)
			require.EqualValues(t, 8, versions["thread:t0000"])
			require.EqualValues(t, 2, versions["thread:t1202"])

			// An expected version beyond the first head read's streams is checked.
			evs := renames(600, "x")
			_, err = s.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t0599": 1}}, evs...)
			require.ErrorIs(t, err, persistence.ErrVersionConflict)
			var conflict *persistence.VersionConflictError
			require.ErrorAs(t, err, &conflict)
			require.EqualValues(t, 2, conflict.Actual)
			// And a repeated command returns its first records.
			again, err := s.Append(ctx, &persistence.AppendOpts{CommandID: "c4"}, renames(501, "4")...)
			require.NoError(t, err)
			require.Len(t, again, 501)
			_, err = s.Append(ctx, &persistence.AppendOpts{CommandID: "c4"}, renames(2, "y")...)
			require.ErrorIs(t, err, persistence.ErrCommandConflict)
		})
	}
}

// TestAppendShapesPrepared: once an append of some shape has run, another
// of the same batch size and stream count prepares nothing more and parses
// nothing again, for the sizes that occur (not only up to 8): a head read
// of 9 streams, a batch of 100 events of one stream, 9, 37 and 100 events
// of as many streams (100: two head reads), 300 events, and more than one
// INSERT carries.
func TestAppendShapesPrepared(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for name, dsn := range map[string]func(t *testing.T) string{
		"Memory": func(*testing.T) string { return ":memory:" },
		"File":   func(t *testing.T) string { return dbtest.SQLiteFile(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := persistence.OpenWith(ctx, dsn(t), &persistence.Options{NoProjections: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			round := 0
			// batch returns n events over streams threads (round-robin),
			// new ones in each round.
			batch := func(n, streams int) []orchestration.Event {
				round++
				evs := make([]orchestration.Event, n)
				for i := range evs {
					evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("r%d-t%d", round, i%streams), Title: "x", At: at}
				}
				return evs
			}
			// Each case: events of streams threads, and unseen more streams
			// whose versions it expects (a head read of 9 streams beside
			// an INSERT of 8 rows).
			for _, c := range []struct{ events, streams, unseen int }{
				{8, 8, 1}, {100, 1, 0}, {9, 9, 0}, {37, 37, 0}, {100, 100, 0}, {300, 3, 0}, {1203, 1, 0}, {1, 1, 0},
			} {
				for _, command := range []bool{false, true} {
					opts := func() *persistence.AppendOpts {
						o := &persistence.AppendOpts{ExpectedVersions: map[string]int64{}}
						for i := range c.unseen {
							o.ExpectedVersions[fmt.Sprintf("thread:unseen-%d-%d", round, i)] = persistence.NoStream
						}
						if command {
							o.CommandID = fmt.Sprintf("cmd-%d", round)
						}
						return o
					}
					_, err := s.Append(ctx, opts(), batch(c.events, c.streams)...)
					require.NoError(t, err)
					prepares, unprepared := persistence.StatementCounts(s)
					_, err = s.Append(ctx, opts(), batch(c.events, c.streams)...)
					require.NoError(t, err)
					p, u := persistence.StatementCounts(s)
					what := fmt.Sprintf("%d events of %d streams (and %d more read), command %v", c.events, c.streams, c.unseen, command)
					require.Equal(t, prepares, p, "%s: statements prepared again", what)
					require.Equal(t, unprepared, u, "%s: statements parsed again", what)
				}
			}
		})
	}
}

// TestAppendShapesBounded: after appends of every batch size from 1 to
// 1,100 events and of every stream count, with and without a command,
// the statement cache keeps no more texts and prepared statements than
// shapes.go states, and the appends ran no more distinct statement texts
// (which pgx prepares and keeps on each PostgreSQL connection) than that:
// on SQLite 10 INSERTs, one per power of two up to 512 rows, on
// PostgreSQL one, the notifying INSERT of arrays (its plain form runs
// before it only past 64 MiB of events).
func TestAppendShapesBounded(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	events := func(n, streams int) []orchestration.Event {
		evs := make([]orchestration.Event, n)
		for i := range evs {
			evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("t%d", i%streams), Title: "x", At: at}
		}
		return evs
	}
	for _, c := range []struct {
		name           string
		dsn            func(t *testing.T) string
		texts, inserts int
	}{
		{"Memory", func(*testing.T) string { return ":memory:" }, persistence.ShapeTexts, 10},
		{"Postgres", func(t *testing.T) string { return dbtest.PostgresSchema(t) }, persistence.ArrayShapeTexts, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s, err := persistence.OpenWith(ctx, c.dsn(t), &persistence.Options{NoProjections: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })

			texts, inserts := map[string]bool{}, map[string]bool{}
			for n := 1; n <= 1100; n++ {
				for _, cmd := range []string{"", "c"} {
					q, err := persistence.AppendTexts(s, cmd, events(n, n)...)
					require.NoError(t, err)
					for _, q := range q {
						texts[q] = true
						if strings.Contains(q, "INSERT INTO events") {
							inserts[q] = true
						}
					}
				}
			}
			require.LessOrEqual(t, len(texts), c.texts, "distinct statement texts of appends of 1 to 1,100 events")
			require.Len(t, inserts, c.inserts, "distinct INSERTs of appends of 1 to 1,100 events")
			require.LessOrEqual(t, persistence.StatementTexts(s), c.texts)

			// Real appends of many sizes and stream counts, one after another.
			for i, n := range []int{1, 2, 3, 5, 9, 17, 37, 64, 99, 100, 101, 255, 300, 511, 513, 777, 1100} {
				for _, streams := range []int{1, 3, n} {
					_, err := s.Append(ctx, &persistence.AppendOpts{CommandID: fmt.Sprintf("c%d-%d", i, streams)}, events(n, streams)...)
					require.NoError(t, err)
					_, err = s.Append(ctx, nil, events(n, streams)...)
					require.NoError(t, err)
				}
			}
			require.LessOrEqual(t, persistence.StatementTexts(s), c.texts)
			require.LessOrEqual(t, persistence.PreparedStatements(s), persistence.MaxPrepared)
		})
	}
}

// TestPostgresAppendShapesParsed counts the statements the server was
// asked to prepare (Parse messages, through a pgProxy) while 520 appends
// of 1 to 32 events that expect 0 to 519 other streams not to exist (a
// head read of 1 to 520 streams) run twice in turn on PostgreSQL. pgx
// prepares each statement text on a connection once and keeps up to 512
// per connection, least recently used first out: the second turn must
// prepare nothing again, which more than 512 distinct texts would not
// allow (the old scheme's 552 here).
func TestPostgresAppendShapesParsed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p, dsn := newPGProxy(t, dbtest.PostgresSchema(t))
	s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	turn := func() {
		for i := range 520 {
			evs := make([]orchestration.Event, 1+i%32)
			for j := range evs {
				evs[j] = orchestration.ThreadRenamed{ThreadID: "t", Title: fmt.Sprint(j), At: at}
			}
			opts := &persistence.AppendOpts{ExpectedVersions: map[string]int64{}}
			for j := range i {
				opts.ExpectedVersions[fmt.Sprintf("thread:unseen-%d", j)] = persistence.NoStream
			}
			_, err := s.Append(ctx, opts, evs...)
			require.NoError(t, err)
		}
	}
	turn()
	first := p.parses.Load()
	turn()
	again := p.parses.Load() - first
	t.Logf("statements prepared: %d in the first turn, %d in the second", first, again)
	require.Zero(t, again, "statements prepared again in the second turn")
}

// TestImportStagingPrepared: an import prepares each shape of its staging
// INSERTs once on its connection (5,000 events: chunks of 512 rows, then
// 256, 128 and 8) instead of parsing one per chunk of 512, and imports
// every event.
func TestImportStagingPrepared(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	src, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	defer src.Close()
	evs := make([]orchestration.Event, 5000)
	for i := range evs {
		evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("t%d", i%7), Title: fmt.Sprint(i), At: at}
	}
	_, err = src.Append(ctx, nil, evs...)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = src.Export(ctx, &buf, nil)
	require.NoError(t, err)

	dst, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	defer dst.Close()
	before, _ := persistence.StatementCounts(dst)
	res, err := dst.Import(ctx, &buf, nil)
	require.NoError(t, err)
	require.EqualValues(t, 5000, res.Events)
	after, _ := persistence.StatementCounts(dst)
	require.EqualValues(t, 4, after-before, "staging INSERTs prepared: one per shape")
	head, err := dst.Head(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5000, head)
}
