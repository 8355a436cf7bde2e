package persistence_test

// Benchmarks of the store (impl=store) against hand-written database/sql
// (impl=raw) on the same driver (modernc), the same pragmas and the same
// kind of file database. See docs/BENCHMARKS.md for the figures and how to
// run them; in short:
//
//	for i in 1 2 3 4 5 6; do go test ./persistence -run '^$' -bench 'AppendBatch10k|AppendSingle|Replay' -count 1; done | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt
//
// PEON_BENCH_LARGE=1 replays 1,000,000 events instead of 100,000.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/peonhq/peon/internal/cputime"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// rawPragmas are the store's connection settings (see sqlitePragmas in
// internal/engine/sqlite/open.go); WAL is a property of the file, which the store created.
const rawPragmas = "?_pragma=foreign_keys(1)&_pragma=busy_timeout(30000)&_pragma=synchronous(NORMAL)" +
	"&_time_format=sqlite&_timezone=UTC&_txlock=immediate"

// rawColumns are the columns of events, in the store's order.
const rawColumns = "sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at, command_id, correlation_id, causation_id"

// rawRows is how many rows one raw INSERT carries: the prototype measured
// 1,000–5,000 as the best range.
const rawRows = 1000

// The shape of the generated log: threads of ten turns, each turn a user
// message and a streamed assistant reply of 20 deltas.
const (
	eventsPerTurn   = 26
	eventsPerThread = 10 * eventsPerTurn
)

var benchT0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// benchEvent returns event i of a deterministic, realistic session log,
// mostly message.delta events.
func benchEvent(i int) orchestration.Event {
	thread := fmt.Sprintf("th-%07d", i/eventsPerThread)
	j := i % eventsPerThread
	turn := fmt.Sprintf("%s-u%02d", thread, j/eventsPerTurn)
	msg := turn + "-a"
	at := benchT0.Add(time.Duration(i)*time.Millisecond + 123456789)
	switch k := j % eventsPerTurn; {
	case j == 0:
		return orchestration.ThreadCreated{ThreadID: thread, ProjectID: "p-bench", Title: "Benchmark thread " + thread, Model: "gpt-5", At: at}
	case k == 0:
		return orchestration.TurnStarted{ThreadID: thread, TurnID: turn, At: at}
	case k == 1:
		return orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: turn + "-q", Role: orchestration.RoleUser,
			Text: "Why does the CI build fail on the race detector? Please look at persistence/append.go.", At: at}
	case k == 2:
		return orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: msg, Role: orchestration.RoleAssistant, Streaming: true, At: at}
	case k == eventsPerTurn-3:
		return orchestration.MessageCompleted{ThreadID: thread, TurnID: turn, MessageID: msg, At: at}
	case k == eventsPerTurn-2:
		return orchestration.TurnCompleted{ThreadID: thread, TurnID: turn, At: at}
	case k == eventsPerTurn-1:
		return orchestration.CheckpointCreated{ThreadID: thread, TurnID: turn, GitRef: "refs/peon/" + turn, Message: "after " + turn, At: at}
	default:
		return orchestration.MessageDelta{ThreadID: thread, TurnID: turn, MessageID: msg, Delta: fmt.Sprintf("token %d of the reply ", k), At: at}
	}
}

func benchEvents(from, n int) []orchestration.Event {
	evs := make([]orchestration.Event, n)
	for i := range evs {
		evs[i] = benchEvent(from + i)
	}
	return evs
}

// openBenchStore opens path as a bare log (no projections).
func openBenchStore(tb testing.TB, path string) *persistence.Store {
	tb.Helper()
	s, err := persistence.OpenWith(context.Background(), path, &persistence.Options{NoProjections: true})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// openRaw opens path with database/sql alone. The file must exist with
// its schema: newRawFile makes one.
func openRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path+rawPragmas)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newRawFile creates an empty, migrated database file in WAL mode: the
// store creates it, so both sides write to the same schema.
func newRawFile(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "raw.db")
	openBenchStore(tb, path).Close()
	return path
}

// rawAppender is the hand-written writer: it knows it is the only one, so
// it keeps the last sequence and stream versions in memory.
type rawAppender struct {
	db       *sql.DB
	seq      int64
	versions map[string]int64
	stmts    map[int]string
}

func newRawAppender(db *sql.DB) *rawAppender {
	return &rawAppender{db: db, versions: map[string]int64{}, stmts: map[int]string{}}
}

func (a *rawAppender) statement(n int) string {
	q, ok := a.stmts[n]
	if !ok {
		q = "INSERT INTO events (" + rawColumns + ") VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?),", n), ",")
		a.stmts[n] = q
	}
	return q
}

// append writes events in one transaction with multi-row INSERTs.
func (a *rawAppender) append(ctx context.Context, events []orchestration.Event) error {
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	args := make([]any, 0, min(len(events), rawRows)*12)
	for start := 0; start < len(events); start += rawRows {
		chunk := events[start:min(start+rawRows, len(events))]
		args = args[:0]
		for _, e := range chunk {
			payload, err := json.Marshal(e)
			if err != nil {
				return err
			}
			st := e.StreamID()
			a.versions[st]++
			a.seq++
			args = append(args, a.seq, uuid.Must(uuid.NewV7()).String(), st, a.versions[st], e.EventType(), 1,
				string(payload), e.OccurredAt(), now, nil, nil, nil)
		}
		if _, err := tx.ExecContext(ctx, a.statement(len(chunk)), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// meter reports a benchmark's events/s, and its events per second of CPU
// time (all threads of the process, user and system), which a busy shared
// machine disturbs less than wall time. Start it just before b.Loop.
type meter struct {
	b   *testing.B
	cpu time.Duration
}

func startMeter(b *testing.B) meter { return meter{b, cputime.Used()} }

func (m meter) report(perOp int) {
	events := float64(perOp) * float64(m.b.N)
	m.b.ReportMetric(events/m.b.Elapsed().Seconds(), "events/s")
	if cpu := cputime.Used() - m.cpu; cpu > 0 {
		m.b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkAppendBatch10k appends 10,000 events in one transaction.
func BenchmarkAppendBatch10k(b *testing.B) {
	const n = 10_000
	events := benchEvents(0, n)
	ctx := context.Background()
	b.Run("impl=raw", func(b *testing.B) {
		a := newRawAppender(openRaw(b, newRawFile(b)))
		m := startMeter(b)
		for b.Loop() {
			if err := a.append(ctx, events); err != nil {
				b.Fatal(err)
			}
		}
		m.report(n)
	})
	b.Run("impl=store", func(b *testing.B) {
		s := openBenchStore(b, filepath.Join(b.TempDir(), "store.db"))
		defer s.Close()
		m := startMeter(b)
		for b.Loop() {
			if _, err := s.Append(ctx, nil, events...); err != nil {
				b.Fatal(err)
			}
		}
		m.report(n)
	})
}

// BenchmarkAppendSingle appends one event per Append from 1, 4 and 16
// goroutines at once: the store with and without projections, and raw
// database/sql with the same INSERT, one transaction per event (its
// writers take turns at a mutex, as the store's SQLite writers do). One
// iteration is 16 Appends shared among the writers, so ns/op compares
// across them; p50-us and p99-us are the latency of one Append, and
// appends/group the mean number of Appends a transaction of the store
// held. With PEON_BENCH_SUSTAINED=1 an iteration is 16 Appends per
// writer, so that writers meet at the end of an iteration 16 times less
// often (ns/op then does not compare across writer counts).
func BenchmarkAppendSingle(b *testing.B) {
	ctx := context.Background()
	// Each writer appends the events of its own threads, in order.
	events := make([][]orchestration.Event, 16)
	for w := range events {
		events[w] = benchEvents(w*100*eventsPerThread, 10*eventsPerThread)
	}
	for _, writers := range []int{1, 4, 16} {
		name := fmt.Sprintf("writers=%d", writers)
		b.Run(name+"/impl=raw", func(b *testing.B) {
			a := newRawAppender(openRaw(b, newRawFile(b)))
			var mu sync.Mutex
			next := make([]int, writers)
			appendParallel(b, writers, func(w int) error {
				mu.Lock()
				defer mu.Unlock()
				evs := events[w]
				i := next[w] % len(evs)
				next[w]++
				return a.append(ctx, evs[i:i+1])
			})
		})
		for _, proj := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/impl=store/proj=%s", name, onOff(proj)), func(b *testing.B) {
				s, err := persistence.OpenWith(ctx, filepath.Join(b.TempDir(), "store.db"), &persistence.Options{NoProjections: !proj})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var gm groupMeter
				gm.observe(s)
				next := make([]int, writers)
				appendParallel(b, writers, func(w int) error {
					evs := events[w]
					i := next[w] % len(evs)
					next[w]++
					_, err := s.Append(ctx, nil, evs[i])
					return err
				})
				gm.report(b)
			})
		}
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// parallelCalls is how many single-event calls one iteration of
// appendParallel makes, shared among its writers (per writer with
// PEON_BENCH_SUSTAINED=1).
const parallelCalls = 16

// appendParallel runs b.Loop with writers goroutines sharing parallelCalls
// calls of do per iteration, each call one event, and reports events/s
// and the 50th and 99th percentile of a call's latency.
func appendParallel(b *testing.B, writers int, do func(w int) error) {
	m := startMeter(b)
	calls := parallelCalls
	if os.Getenv("PEON_BENCH_SUSTAINED") != "" {
		calls = parallelCalls * writers
	}
	lat := loopParallel(b, writers, calls, do)
	m.report(calls)
	reportLatency(b, lat)
}

// loopParallel runs b.Loop with writers goroutines sharing calls calls of
// do per iteration, and returns how long each call took.
func loopParallel(b *testing.B, writers, calls int, do func(w int) error) []time.Duration {
	lat := make([][]time.Duration, writers)
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				for range calls / writers {
					start := time.Now()
					if err := do(w); err != nil {
						errs[w] = err
						return
					}
					lat[w] = append(lat[w], time.Since(start))
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return slices.Concat(lat...)
}

// reportLatency reports the 50th and 99th percentile of lat in µs.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
}

// replayN is the size of the replayed log: PEON_BENCH_LARGE=1 for the
// issue's 1,000,000.
func replayN() int {
	if os.Getenv("PEON_BENCH_LARGE") == "1" {
		return 1_000_000
	}
	return 100_000
}

var replayFiles sync.Map // n -> string

// replayFile returns a database file holding the first n events of
// benchEvent, written by the store. It is built once and kept in
// os.TempDir across runs, so a benchmark run does not pay for it.
func replayFile(b *testing.B, n int) string {
	if p, ok := replayFiles.Load(n); ok {
		return p.(string)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("peon-bench-replay-v1-%d.db", n))
	if _, err := os.Stat(path); err != nil {
		tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
		os.Remove(tmp)
		s := openBenchStore(b, tmp)
		const batch = 10_000
		for from := 0; from < n; from += batch {
			if _, err := s.Append(context.Background(), nil, benchEvents(from, min(batch, n-from))...); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil { // checkpoints and removes the WAL
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
	}
	replayFiles.Store(n, path)
	return path
}

// heapPeak samples the heap in use (objects and the unused parts of their
// spans, as MemStats.HeapInuse) every millisecond until stop is called,
// which returns the peak in MiB.
func heapPeak() (stop func() float64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	read := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		peak := read()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() float64 {
		close(done)
		return float64(<-result) / (1 << 20)
	}
}

// rawDecoders decode a payload into its concrete type with encoding/json.
var rawDecoders = map[string]func([]byte) (orchestration.Event, error){
	orchestration.TypeProjectCreated:     rawDecode[orchestration.ProjectCreated],
	orchestration.TypeProjectRenamed:     rawDecode[orchestration.ProjectRenamed],
	orchestration.TypeProjectDeleted:     rawDecode[orchestration.ProjectDeleted],
	orchestration.TypeThreadCreated:      rawDecode[orchestration.ThreadCreated],
	orchestration.TypeThreadRenamed:      rawDecode[orchestration.ThreadRenamed],
	orchestration.TypeThreadArchived:     rawDecode[orchestration.ThreadArchived],
	orchestration.TypeThreadDeleted:      rawDecode[orchestration.ThreadDeleted],
	orchestration.TypeTurnStarted:        rawDecode[orchestration.TurnStarted],
	orchestration.TypeTurnCompleted:      rawDecode[orchestration.TurnCompleted],
	orchestration.TypeTurnFailed:         rawDecode[orchestration.TurnFailed],
	orchestration.TypeTurnInterrupted:    rawDecode[orchestration.TurnInterrupted],
	orchestration.TypeMessageAdded:       rawDecode[orchestration.MessageAdded],
	orchestration.TypeMessageDelta:       rawDecode[orchestration.MessageDelta],
	orchestration.TypeMessageCompleted:   rawDecode[orchestration.MessageCompleted],
	orchestration.TypeCheckpointCreated:  rawDecode[orchestration.CheckpointCreated],
	orchestration.TypeCheckpointReverted: rawDecode[orchestration.CheckpointReverted],
	orchestration.TypeSettingChanged:     rawDecode[orchestration.SettingChanged],
}

func rawDecode[T orchestration.Event](payload []byte) (orchestration.Event, error) {
	var e T
	err := json.Unmarshal(payload, &e)
	return e, err
}

// rawReplay reads the whole log in one query with rows.Scan and decodes
// each payload with encoding/json.
func rawReplay(ctx context.Context, db *sql.DB, sink func(persistence.Recorded)) error {
	rows, err := db.QueryContext(ctx, "SELECT "+rawColumns+" FROM events ORDER BY sequence")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r                persistence.Recorded
			cmd, corr, cause sql.NullString
		)
		if err := rows.Scan(&r.Sequence, &r.EventID, &r.StreamID, &r.StreamVersion, &r.Type, &r.SchemaVersion,
			&r.Payload, &r.OccurredAt, &r.RecordedAt, &cmd, &corr, &cause); err != nil {
			return err
		}
		r.CommandID, r.CorrelationID, r.CausationID = cmd.String, corr.String, cause.String
		dec, ok := rawDecoders[r.Type]
		if !ok {
			return fmt.Errorf("unknown type %q", r.Type)
		}
		if r.Event, err = dec(r.Payload); err != nil {
			return err
		}
		sink(r)
	}
	return rows.Err()
}

// BenchmarkReplay reads a log of replayN events from the start.
func BenchmarkReplay(b *testing.B) {
	n := replayN()
	path := replayFile(b, n)
	ctx := context.Background()
	var last persistence.Recorded // keeps the loop bodies honest
	check := func(b *testing.B, got int) {
		if got != n {
			b.Fatalf("replayed %d events, want %d", got, n)
		}
	}
	b.Run("impl=raw", func(b *testing.B) {
		db := openRaw(b, path)
		runtime.GC()
		peak := heapPeak()
		m := startMeter(b)
		for b.Loop() {
			got := 0
			if err := rawReplay(ctx, db, func(r persistence.Recorded) { last = r; got++ }); err != nil {
				b.Fatal(err)
			}
			check(b, got)
		}
		b.ReportMetric(peak(), "peak-MiB")
		m.report(n)
	})
	b.Run("impl=store", func(b *testing.B) {
		s := openBenchStore(b, path)
		defer s.Close()
		runtime.GC()
		peak := heapPeak()
		m := startMeter(b)
		for b.Loop() {
			got := 0
			for rec, err := range s.ReplayAll(ctx) {
				if err != nil {
					b.Fatal(err)
				}
				last = rec
				got++
			}
			check(b, got)
		}
		b.ReportMetric(peak(), "peak-MiB")
		m.report(n)
	})
	_ = last
}
