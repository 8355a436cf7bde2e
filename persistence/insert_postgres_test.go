package persistence_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// renamesOf returns n thread.renamed events over streams threads
// (round-robin) named after prefix, each title of size bytes.
func renamesOf(prefix string, n, streams, size int) []orchestration.Event {
	title := strings.Repeat("x", size)
	evs := make([]orchestration.Event, n)
	for i := range evs {
		evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("%s-%d", prefix, i%streams), Title: title, At: persistencetest.T0}
	}
	return evs
}

// TestPostgresAppendIsOneInsert counts the INSERTs into events that
// appends send through a pgProxy on PostgreSQL: one INSERT of arrays for
// any number of events, through Append alone, AppendTx and group commit.
// The multi-row INSERTs sent one per set bit of the batch size (100
// events: 64, 32 and 4 rows). Events larger than the INSERT of arrays
// carries (see maxArrayBytes) take more than one.
func TestPostgresAppendIsOneInsert(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p, dsn := newPGProxy(t, dbtest.PostgresSchema(t))
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	// inserts returns how many INSERTs into events f sent.
	inserts := func(f func()) int64 {
		before := p.inserts.Load()
		f()
		return p.inserts.Load() - before
	}

	for _, n := range []int{1, 100, 1000} {
		got := inserts(func() {
			recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: fmt.Sprint("c", n)}, renamesOf(fmt.Sprint("a", n), n, 7, 10)...)
			require.NoError(t, err)
			require.Len(t, recs, n)
		})
		require.EqualValues(t, 1, got, "INSERTs of an Append of %d events", n)
	}

	got := inserts(func() {
		tx, err := s.Client().Tx(ctx)
		require.NoError(t, err)
		_, err = s.AppendTx(ctx, tx, nil, renamesOf("tx", 100, 3, 10)...)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	})
	require.EqualValues(t, 1, got, "INSERTs of an AppendTx of 100 events")

	// Concurrent Appends commit in groups: the fast way writes all
	// members in one INSERT, the slow way (a command repeated in the
	// group) each member in one of its own; no pipeline carries more.
	var mu sync.Mutex
	most := 0
	persistence.SetGroupObserver(s, func(members int) {
		mu.Lock()
		defer mu.Unlock()
		most = max(most, members)
	})
	const writers, rounds = 8, 6
	p.mostInserts.Store(0)
	got = inserts(func() {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for r := range rounds {
					// Every third round two writers share a command, with
					// the same events: one stores them, the other gets
					// its records.
					id, prefix := "", fmt.Sprintf("g%d-%d", w, r)
					if r%3 == 0 {
						id, prefix = fmt.Sprintf("shared-%d-%d", w/2, r), fmt.Sprintf("g%d-%d", w/2, r)
					}
					_, err := s.Append(ctx, &persistence.AppendOpts{CommandID: id}, renamesOf(prefix, 100, 5, 10)...)
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	mu.Lock()
	t.Logf("%d Appends of 100 events by %d writers: %d INSERTs, groups of up to %d", writers*rounds, writers, got, most)
	mu.Unlock()
	require.LessOrEqual(t, got, int64(writers*rounds), "INSERTs of the concurrent Appends")
	require.EqualValues(t, 1, p.mostInserts.Load(), "INSERTs one pipeline carried")

	// Events of 1 MiB: 64 MiB an INSERT at most.
	got = inserts(func() {
		recs, err := s.Append(ctx, nil, renamesOf("big", 70, 2, persistence.MaxPayloadBytes-200)...)
		require.NoError(t, err)
		require.Len(t, recs, 70)
	})
	require.EqualValues(t, 2, got, "INSERTs of an Append of 70 MiB")

	report, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
}

// TestPostgresInsertKeepsNulls: a command, correlation or causation id an
// event does not have is stored as SQL NULL, not as an empty string,
// beside events that have them in the same INSERT of arrays (an Import's,
// and a group's), and reads back as "".
func TestPostgresInsertKeepsNulls(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.Open(ctx, dbtest.PostgresSchema(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	_, err = s.Append(ctx, nil, renamesOf("none", 3, 1, 5)...)
	require.NoError(t, err)
	_, err = s.Append(ctx, &persistence.AppendOpts{CommandID: "cmd", CorrelationID: "corr", CausationID: "cause"}, renamesOf("all", 3, 1, 5)...)
	require.NoError(t, err)
	_, err = s.Append(ctx, &persistence.AppendOpts{CorrelationID: "corr2"}, renamesOf("some", 3, 1, 5)...)
	require.NoError(t, err)
	// nulls reads, per sequence, which of the three ids are NULL, and
	// which are empty strings.
	nulls := func(s *persistence.Store) []string {
		rows, err := s.Client().QueryContext(ctx, "SELECT sequence, command_id IS NULL, correlation_id IS NULL, causation_id IS NULL, "+
			"coalesce(command_id, '') || '/' || coalesce(correlation_id, '') || '/' || coalesce(causation_id, '') FROM events ORDER BY sequence")
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var seq int64
			var cmd, corr, cause bool
			var ids string
			require.NoError(t, rows.Scan(&seq, &cmd, &corr, &cause, &ids))
			out = append(out, fmt.Sprintf("%d %v %v %v %s", seq, cmd, corr, cause, ids))
		}
		require.NoError(t, rows.Err())
		return out
	}
	want := []string{
		"1 true true true //", "2 true true true //", "3 true true true //",
		"4 false false false cmd/corr/cause", "5 false false false cmd/corr/cause", "6 false false false cmd/corr/cause",
		"7 true false true /corr2/", "8 true false true /corr2/", "9 true false true /corr2/",
	}
	require.Equal(t, want, nulls(s))
	for r, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		switch {
		case r.Sequence <= 3:
			require.Equal(t, [3]string{}, [3]string{r.CommandID, r.CorrelationID, r.CausationID})
		case r.Sequence >= 7:
			require.Equal(t, [3]string{"", "corr2", ""}, [3]string{r.CommandID, r.CorrelationID, r.CausationID})
		}
	}

	// An Import stages and writes all nine in one INSERT of arrays.
	var buf bytes.Buffer
	_, err = s.Export(ctx, &buf, nil)
	require.NoError(t, err)
	dst, err := persistence.Open(ctx, dbtest.PostgresSchema(t))
	require.NoError(t, err)
	t.Cleanup(func() { dst.Close() })
	_, err = dst.Import(ctx, &buf, nil)
	require.NoError(t, err)
	require.Equal(t, want, nulls(dst))
}
