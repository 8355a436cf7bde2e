package persistence_test

// Benchmarks of the store on PostgreSQL against hand-written pgx on the
// same server and the same table. They skip unless PEON_TEST_POSTGRES_URL
// is set; see docs/BENCHMARKS-postgres.md for the figures:
//
//	PEON_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  go test ./persistence -run '^$' -bench Postgres -count 3
//
// PEON_BENCH_LARGE=1 adds the replay of 1,000,000 events.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// pgRawRows is how many rows one raw INSERT carries, as the store's.
const pgRawRows = 500

var pgBenchT0 = time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)

// pgBenchEvents returns n events of a streamed reply in thread, mostly
// message.delta, as an agent session writes them.
func pgBenchEvents(thread string, n int) []orchestration.Event {
	evs := make([]orchestration.Event, n)
	for i := range evs {
		at := pgBenchT0.Add(time.Duration(i) * time.Millisecond)
		switch i % 26 {
		case 0:
			evs[i] = orchestration.TurnStarted{ThreadID: thread, TurnID: fmt.Sprint(thread, "-u", i/26), At: at}
		case 1:
			evs[i] = orchestration.MessageAdded{ThreadID: thread, TurnID: fmt.Sprint(thread, "-u", i/26), MessageID: fmt.Sprint(thread, "-m", i/26),
				Role: orchestration.RoleAssistant, Streaming: true, At: at}
		default:
			evs[i] = orchestration.MessageDelta{ThreadID: thread, TurnID: fmt.Sprint(thread, "-u", i/26), MessageID: fmt.Sprint(thread, "-m", i/26),
				Delta: fmt.Sprintf("token %d of the reply ", i), At: at}
		}
	}
	return evs
}

// openPostgresBench opens a bare log (no projections) in a fresh schema
// and returns it with its DSN.
func openPostgresBench(b *testing.B) (*persistence.Store, string) {
	b.Helper()
	dsn := dbtest.PostgresSchema(b)
	s, err := persistence.OpenWith(context.Background(), dsn, &persistence.Options{NoProjections: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, dsn
}

// pgRaw is the hand-written writer on one pgx connection: it knows it is
// the only writer of its table, so it keeps the sequence and the stream
// versions in memory, and it encodes the events as the store does.
type pgRaw struct {
	conn     *pgx.Conn
	seq      int64
	versions map[string]int64
}

// openPostgresRaw returns a raw writer on a fresh schema, migrated by the
// store so both write to the same table with the same indexes.
func openPostgresRaw(b *testing.B) *pgRaw {
	b.Helper()
	s, dsn := openPostgresBench(b)
	s.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return &pgRaw{conn: conn, versions: map[string]int64{}}
}

var pgRawInsert sync.Map // rows -> statement

func pgRawStatement(n int) string {
	if q, ok := pgRawInsert.Load(n); ok {
		return q.(string)
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO events (sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, " +
		"occurred_at, recorded_at, command_id, correlation_id, causation_id) VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,NULL,NULL,NULL)", 9*i+1, 9*i+2, 9*i+3, 9*i+4, 9*i+5, 9*i+6, 9*i+7, 9*i+8, 9*i+9)
	}
	q := sb.String()
	pgRawInsert.Store(n, q)
	return q
}

// rows encodes events into the values of the events table.
func (r *pgRaw) rows(events []orchestration.Event) ([][]any, error) {
	now := time.Now().UTC()
	out := make([][]any, len(events))
	for i, e := range events {
		p, err := orchestration.Encode(e)
		if err != nil {
			return nil, err
		}
		st := e.StreamID()
		r.seq++
		r.versions[st]++
		out[i] = []any{r.seq, uuid.Must(uuid.NewV7()).String(), st, r.versions[st], e.EventType(), 1, string(p), e.OccurredAt(), now}
	}
	return out, nil
}

// insert writes events in one transaction with multi-row INSERTs.
func (r *pgRaw) insert(ctx context.Context, events []orchestration.Event) error {
	rows, err := r.rows(events)
	if err != nil {
		return err
	}
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	args := make([]any, 0, min(len(rows), pgRawRows)*9)
	for start := 0; start < len(rows); start += pgRawRows {
		chunk := rows[start:min(start+pgRawRows, len(rows))]
		args = args[:0]
		for _, row := range chunk {
			args = append(args, row...)
		}
		if _, err := tx.Exec(ctx, pgRawStatement(len(chunk)), args...); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// unnest writes events in one transaction with one INSERT … SELECT FROM
// unnest of one array per column: 9 parameters however many rows.
func (r *pgRaw) unnest(ctx context.Context, events []orchestration.Event) error {
	rows, err := r.rows(events)
	if err != nil {
		return err
	}
	var (
		seqs, versions, schemas   = make([]int64, len(rows)), make([]int64, len(rows)), make([]int64, len(rows))
		ids, streams, types, body = make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		occurred, recorded        = make([]time.Time, len(rows)), make([]time.Time, len(rows))
	)
	for i, row := range rows {
		seqs[i], ids[i], streams[i], versions[i], types[i] = row[0].(int64), row[1].(string), row[2].(string), row[3].(int64), row[4].(string)
		schemas[i], body[i], occurred[i], recorded[i] = int64(row[5].(int)), row[6].(string), row[7].(time.Time), row[8].(time.Time)
	}
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO events (sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at) "+
		"SELECT s, i, st, v, t, sv, p::json, o, r FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[]) "+
		"AS u(s, i, st, v, t, sv, p, o, r)",
		seqs, ids, streams, versions, types, schemas, body, occurred, recorded); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// copy writes events in one transaction with COPY.
func (r *pgRaw) copy(ctx context.Context, events []orchestration.Event) error {
	rows, err := r.rows(events)
	if err != nil {
		return err
	}
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	cols := []string{"sequence", "event_id", "stream_id", "stream_version", "event_type", "schema_version", "payload", "occurred_at", "recorded_at"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func pgEventsPerSec(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPostgresAppendBatch10k appends 10,000 events in one
// transaction: the store, and by hand with multi-row INSERTs of 500 rows
// (what the store does), one INSERT from unnest'ed arrays, and COPY.
func BenchmarkPostgresAppendBatch10k(b *testing.B) {
	const n = 10_000
	events := pgBenchEvents("batch", n)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		s, _ := openPostgresBench(b)
		for b.Loop() {
			if _, err := s.Append(ctx, nil, events...); err != nil {
				b.Fatal(err)
			}
		}
		pgEventsPerSec(b, n)
	})
	for _, raw := range []struct {
		name  string
		write func(*pgRaw, context.Context, []orchestration.Event) error
	}{{"raw-insert", (*pgRaw).insert}, {"raw-unnest", (*pgRaw).unnest}, {"raw-copy", (*pgRaw).copy}} {
		b.Run(raw.name, func(b *testing.B) {
			r := openPostgresRaw(b)
			for b.Loop() {
				if err := raw.write(r, ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			pgEventsPerSec(b, n)
		})
	}
	// Every size from 1 to 600, one Append each: more distinct texts
	// than pgx keeps per connection (512) in the old scheme.
	all := pgBenchEvents("mixed", mixedMax)
	b.Run("events=1to600/impl=raw", func(b *testing.B) {
		r := openPostgresRaw(b)
		reportMixed(b, func(n int) error { return r.insert(ctx, all[:n]) })
	})
	b.Run("events=1to600/impl=store", func(b *testing.B) {
		s, _ := openPostgresBench(b)
		reportMixed(b, func(n int) error {
			_, err := s.Append(ctx, nil, all[:n]...)
			return err
		})
	})
}

// BenchmarkPostgresAppendSingle appends one event per transaction.
func BenchmarkPostgresAppendSingle(b *testing.B) {
	events := pgBenchEvents("single", 1000)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		s, _ := openPostgresBench(b)
		i := 0
		for b.Loop() {
			if _, err := s.Append(ctx, nil, events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		pgEventsPerSec(b, 1)
	})
	b.Run("raw", func(b *testing.B) {
		r := openPostgresRaw(b)
		i := 0
		for b.Loop() {
			if err := r.insert(ctx, events[i%len(events):i%len(events)+1]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		pgEventsPerSec(b, 1)
	})
}

// BenchmarkPostgresAppendConcurrent has 1, 4 and 16 writers append to
// their own streams at once, one event or ten per Append. One iteration is
// 16 Appends shared among the writers, so ns/op compares across them;
// events/cpu-s counts this process's CPU time only (not the server's),
// appends/group the mean number of Appends a transaction of the store
// held.
//
// raw-identity is the baseline the append lock gives up: each writer on
// its own connection inserts with the identity column's numbers and no
// lock, so PostgreSQL can share WAL flushes among concurrent commits
// (group commit), and readers could miss a late commit (docs/ORDERING.md).
func BenchmarkPostgresAppendConcurrent(b *testing.B) {
	const appends = 16
	ctx := context.Background()
	for _, per := range []int{1, 10} {
		for _, writers := range []int{1, 4, 16} {
			batches := make([][]orchestration.Event, writers)
			for w := range batches {
				batches[w] = pgBenchEvents(fmt.Sprint("w", w), per)
			}
			name := fmt.Sprintf("events=%d/writers=%d", per, writers)
			b.Run(name+"/store", func(b *testing.B) {
				s, _ := openPostgresBench(b)
				var gm groupMeter
				gm.observe(s)
				m := startMeter(b)
				pgParallel(b, writers, appends, func(w int) error {
					_, err := s.Append(ctx, nil, batches[w]...)
					return err
				})
				m.report(appends * per)
				gm.report(b)
			})
			if per == 1 {
				b.Run(name+"/store-projected", func(b *testing.B) {
					s, err := persistence.Open(ctx, dbtest.PostgresSchema(b))
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					var gm groupMeter
					gm.observe(s)
					m := startMeter(b)
					pgParallel(b, writers, appends, func(w int) error {
						_, err := s.Append(ctx, nil, batches[w]...)
						return err
					})
					m.report(appends * per)
					gm.report(b)
				})
			}
			b.Run(name+"/raw-identity", func(b *testing.B) {
				_, dsn := openPostgresBench(b)
				raws := make([]*pgRaw, writers)
				for w := range raws {
					conn, err := pgx.Connect(ctx, dsn)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { conn.Close(context.Background()) })
					raws[w] = &pgRaw{conn: conn, versions: map[string]int64{}}
				}
				pgParallel(b, writers, appends, func(w int) error {
					return raws[w].insertIdentity(ctx, batches[w])
				})
				pgEventsPerSec(b, appends*per)
			})
		}
	}
}

// pgParallel runs b.Loop with writers goroutines sharing the given number
// of calls of do per iteration, and reports the 50th and 99th percentile
// of a call's latency.
func pgParallel(b *testing.B, writers, calls int, do func(w int) error) {
	reportLatency(b, loopParallel(b, writers, calls, do))
}

// insertIdentity writes events in one transaction, numbered by the
// identity column: the naive store, without the append lock.
func (r *pgRaw) insertIdentity(ctx context.Context, events []orchestration.Event) error {
	rows, err := r.rows(events)
	if err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at) VALUES ")
	args := make([]any, 0, len(rows)*8)
	for i, row := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", 8*i+1, 8*i+2, 8*i+3, 8*i+4, 8*i+5, 8*i+6, 8*i+7, 8*i+8)
		args = append(args, row[1:]...) // all but the sequence
	}
	tx, err := r.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sb.String(), args...); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// BenchmarkPostgresProjectedAppend is BenchmarkProjectedAppend on
// PostgreSQL: appends of a realistic session that maintain the projection
// tables against bare ones, one event per Append and in batches of 100.
func BenchmarkPostgresProjectedAppend(b *testing.B) {
	benchProjectedAppend(b, func(b *testing.B, opts *persistence.Options) *persistence.Store {
		s, err := persistence.OpenWith(context.Background(), dbtest.PostgresSchema(b), opts)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// BenchmarkPostgresReplay1M replays 1,000,000 events and reports the peak
// heap; opt-in with PEON_BENCH_LARGE=1, as filling the log takes a while.
func BenchmarkPostgresReplay1M(b *testing.B) {
	if os.Getenv("PEON_BENCH_LARGE") != "1" {
		b.Skip("set PEON_BENCH_LARGE=1 to replay 1,000,000 events")
	}
	const n, batch = 1_000_000, 10_000
	ctx := context.Background()
	s, _ := openPostgresBench(b)
	for i := 0; i < n; i += batch {
		if _, err := s.Append(ctx, nil, pgBenchEvents(fmt.Sprint("th", i/batch), batch)...); err != nil {
			b.Fatal(err)
		}
	}
	var peak float64
	for b.Loop() {
		stop := heapPeak()
		count := 0
		for _, err := range s.ReplayAll(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		peak = max(peak, stop())
		if count != n {
			b.Fatalf("replayed %d events, want %d", count, n)
		}
	}
	pgEventsPerSec(b, n)
	b.ReportMetric(peak, "peak-heap-MiB")
}

// BenchmarkPostgresAppendBatch appends batches of batchSizes events in
// one transaction each: the store (bare log) against raw pgx with the
// same multi-row INSERT, alternating. See docs/BENCHMARKS-postgres.md
// "Prepared shapes (issue 12)"; the comparison with watermill-sql is in
// the bench module (BenchmarkPostgresBatch).
func BenchmarkPostgresAppendBatch(b *testing.B) {
	ctx := context.Background()
	for _, n := range batchSizes {
		events := pgBenchEvents("batch", n)
		b.Run(fmt.Sprintf("events=%d/impl=raw", n), func(b *testing.B) {
			r := openPostgresRaw(b)
			for b.Loop() {
				if err := r.insert(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			pgEventsPerSec(b, n)
		})
		b.Run(fmt.Sprintf("events=%d/impl=store", n), func(b *testing.B) {
			s, _ := openPostgresBench(b)
			for b.Loop() {
				if _, err := s.Append(ctx, nil, events...); err != nil {
					b.Fatal(err)
				}
			}
			pgEventsPerSec(b, n)
		})
	}
	// Every size from 1 to 600, one Append each: more distinct texts
	// than pgx keeps per connection (512) in the old scheme.
	all := pgBenchEvents("mixed", mixedMax)
	b.Run("events=1to600/impl=raw", func(b *testing.B) {
		r := openPostgresRaw(b)
		reportMixed(b, func(n int) error { return r.insert(ctx, all[:n]) })
	})
	b.Run("events=1to600/impl=store", func(b *testing.B) {
		s, _ := openPostgresBench(b)
		reportMixed(b, func(n int) error {
			_, err := s.Append(ctx, nil, all[:n]...)
			return err
		})
	})
}

// BenchmarkPostgresStreamingProjection is BenchmarkStreamingProjection on
// PostgreSQL, each store in a schema of its own.
func BenchmarkPostgresStreamingProjection(b *testing.B) {
	benchStreamingProjection(b, func(b *testing.B, opts *persistence.Options) *persistence.Store {
		s, err := persistence.OpenWith(context.Background(), dbtest.PostgresSchema(b), opts)
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
