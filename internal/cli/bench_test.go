package cli

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// benchEvents is the size of the export and import benchmarks: a smoke
// size by default, 1,000,000 events with PEON_BENCH_LARGE=1.
func benchEvents() int {
	if os.Getenv("PEON_BENCH_LARGE") == "1" {
		return 1_000_000
	}
	return 20_000
}

// BenchmarkExportImport runs `peon-store import FILE` into a new store and
// `peon-store export -o FILE` of that store, through the command line, on
// a generated session log, and reports events/s and the peak memory of
// each: the Go heap and the process's resident set (which includes
// SQLite's page cache).
//
//	PEON_BENCH_LARGE=1 go test ./internal/cli -run '^$' -bench ExportImport -benchtime 1x -timeout 30m
func BenchmarkExportImport(b *testing.B) {
	n := benchEvents()
	dir := b.TempDir()
	input := filepath.Join(dir, "session.jsonl")
	writeSessionLog(b, input, n)
	e := &env{db: filepath.Join(dir, "src.db"), vars: map[string]string{}}

	run := func(b *testing.B, args ...string) {
		var out, errOut bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return e.vars[k] }}
		if code := a.run(b.Context(), args); code != 0 {
			b.Fatalf("peon-store %v: exit %d: %s", args, code, errOut.String())
		}
	}

	b.Run("Import", func(b *testing.B) {
		i := 0
		var m *memPeak
		for b.Loop() {
			i++
			db := filepath.Join(dir, "import-"+strconv.Itoa(i)+".db")
			m = startMemPeak()
			run(b, "--db", db, "import", input)
			m.stop()
			if i == 1 {
				require.NoError(b, os.Rename(db, e.db))
			} else {
				os.Remove(db)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		m.report(b)
	})

	b.Run("Export", func(b *testing.B) {
		var m *memPeak
		out := filepath.Join(dir, "export.jsonl")
		for b.Loop() {
			m = startMemPeak()
			run(b, "--db", e.db, "export", "-o", out)
			m.stop()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		m.report(b)
		// The export gives back the generated log byte for byte, apart
		// from recorded_at, which the generator sets like the store does.
		want, err := os.ReadFile(input)
		require.NoError(b, err)
		got, err := os.ReadFile(out)
		require.NoError(b, err)
		require.Equal(b, len(want), len(got))
		require.True(b, bytes.Equal(want, got), "the export differs from the imported log")
	})
}

// BenchmarkImportLock runs `peon-store import FILE` of a generated
// session log into a new store while a prober on a connection of its own
// takes the store's write lock and releases it at once, every 10 ms
// (SQLite: BEGIN IMMEDIATE and ROLLBACK; PostgreSQL: the append lock in a
// transaction rolled back), as another process's append would. It reports
// the longest the prober waited (max-wait-ms: how long the import held the
// lock at a stretch), the probes that waited over a second, and the
// import's wall time. PEON_BENCH_IMPORT_EVENTS sets the size (20,000 by
// default); PostgreSQL runs when PEON_TEST_POSTGRES_URL is set.
//
//	PEON_BENCH_IMPORT_EVENTS=500000 go test ./internal/cli -run '^$' -bench ImportLock -benchtime 1x -timeout 30m
func BenchmarkImportLock(b *testing.B) {
	n := 20_000
	if v := os.Getenv("PEON_BENCH_IMPORT_EVENTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	dir := b.TempDir()
	input := filepath.Join(dir, "session.jsonl")
	writeSessionLog(b, input, n)
	engines := []struct {
		name  string
		db    func(b *testing.B, i int) string
		probe func(b *testing.B, db string) (lock func(ctx context.Context) error, close func())
	}{
		{"SQLite", func(b *testing.B, i int) string { return filepath.Join(dir, "import-"+strconv.Itoa(i)+".db") },
			func(b *testing.B, db string) (func(ctx context.Context) error, func()) {
				c, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(600000)&_txlock=immediate")
				require.NoError(b, err)
				return func(ctx context.Context) error {
					tx, err := c.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					return tx.Rollback()
				}, func() { c.Close() }
			}},
		{"PostgreSQL", func(b *testing.B, _ int) string { return dbtest.NamedPostgresSchema(b) },
			func(b *testing.B, db string) (func(ctx context.Context) error, func()) {
				c, err := sql.Open("pgx", db)
				require.NoError(b, err)
				return func(ctx context.Context) error {
					tx, err := c.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					_, err = tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(1885695854, 'events'::regclass::oid::int4)")
					return err
				}, func() { c.Close() }
			}},
	}
	for _, eng := range engines {
		b.Run(eng.name, func(b *testing.B) {
			var maxWait time.Duration
			long, i := 0, 0
			var took time.Duration
			for b.Loop() {
				i++
				db := eng.db(b, i)
				e := &env{db: db, vars: map[string]string{}}
				run := func(args ...string) {
					var out, errOut bytes.Buffer
					a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return e.vars[k] }}
					if code := a.run(b.Context(), append([]string{"--db", db}, args...)); code != 0 {
						b.Fatalf("peon-store %v: exit %d: %s", args, code, errOut.String())
					}
				}
				run("migrate")
				lock, closeProbe := eng.probe(b, db)
				stop, done := make(chan struct{}), make(chan error, 1)
				go func() {
					defer close(done)
					for {
						start := time.Now()
						if err := lock(b.Context()); err != nil {
							done <- err
							return
						}
						w := time.Since(start)
						maxWait = max(maxWait, w)
						if w > time.Second {
							long++
						}
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
					}
				}()
				start := time.Now()
				run("import", input)
				took += time.Since(start)
				close(stop)
				require.NoError(b, <-done)
				closeProbe()
			}
			b.ReportMetric(float64(maxWait.Microseconds())/1000, "max-wait-ms")
			b.ReportMetric(float64(long)/float64(b.N), "waits>1s")
			b.ReportMetric(took.Seconds()/float64(b.N), "import-s")
			b.ReportMetric(float64(n)*float64(b.N)/took.Seconds(), "events/s")
		})
	}
}

// writeSessionLog writes n events of realistic sessions in the export
// format: threads of turns, each a prompt and a reply streamed in deltas.
func writeSessionLog(tb testing.TB, path string, n int) {
	f, err := os.Create(path)
	require.NoError(tb, err)
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var (
		line     []byte
		seq      int64
		versions = map[string]int64{}
	)
	emit := func(e orchestration.Event) {
		seq++
		at = at.Add(37 * time.Millisecond)
		st := e.StreamID()
		versions[st]++
		rec := persistence.Recorded{Sequence: seq, EventID: fmt.Sprintf("0190f4a2-7c3e-7000-8000-%012x", seq),
			StreamID: st, StreamVersion: versions[st], Type: e.EventType(), SchemaVersion: orchestration.SchemaVersion, Event: e, OccurredAt: e.OccurredAt(),
			RecordedAt: at.Add(time.Second).Truncate(time.Microsecond), CorrelationID: "corr-" + strconv.FormatInt(seq/30, 10)}
		line, err = persistence.AppendJSONL(line[:0], &rec)
		require.NoError(tb, err)
		_, err = w.Write(line)
		require.NoError(tb, err)
	}
	emit(orchestration.ProjectCreated{ProjectID: "p1", Name: "bench", WorkspaceRoot: "/src/bench", At: at})
	for t := 0; int(seq) < n; t++ {
		th := "t" + strconv.Itoa(t)
		emit(orchestration.ThreadCreated{ThreadID: th, ProjectID: "p1", Title: "Thread " + th, Model: "gpt-5-codex", At: at})
		for u := 0; u < 10 && int(seq) < n; u++ {
			turn, msg := th+"-u"+strconv.Itoa(u), th+"-m"+strconv.Itoa(u)
			emit(orchestration.TurnStarted{ThreadID: th, TurnID: turn, At: at})
			emit(orchestration.MessageAdded{ThreadID: th, TurnID: turn, MessageID: msg + "q", Role: orchestration.RoleUser,
				Text: "Make the replay faster and keep memory flat, please.", At: at})
			emit(orchestration.MessageAdded{ThreadID: th, TurnID: turn, MessageID: msg, Role: orchestration.RoleAssistant, Streaming: true, At: at})
			for d := 0; d < 24 && int(seq) < n-3; d++ {
				emit(orchestration.MessageDelta{ThreadID: th, TurnID: turn, MessageID: msg, Delta: "token " + strconv.Itoa(d) + " ", At: at})
			}
			emit(orchestration.MessageCompleted{ThreadID: th, TurnID: turn, MessageID: msg, At: at})
			emit(orchestration.TurnCompleted{ThreadID: th, TurnID: turn, At: at})
		}
	}
	require.NoError(tb, w.Flush())
}

// memPeak samples the Go heap while a command runs and reads the
// process's peak resident set (VmHWM, reset at the start) at its end.
type memPeak struct {
	done     chan struct{}
	finished chan struct{}
	heap     uint64
	rssKiB   int64
}

func startMemPeak() *memPeak {
	debug.FreeOSMemory() // start from the live heap, not the last command's garbage
	// Writing 5 resets the peak resident set size of the process (Linux).
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	m := &memPeak{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(m.finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			m.heap = max(m.heap, s[0].Value.Uint64())
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memPeak) stop() {
	close(m.done)
	<-m.finished
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			m.rssKiB, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
}

func (m *memPeak) report(b *testing.B) {
	if m == nil {
		return
	}
	b.ReportMetric(float64(m.heap)/(1<<20), "peak-heap-MiB")
	if m.rssKiB > 0 {
		b.ReportMetric(float64(m.rssKiB)/1024, "peak-rss-MiB")
	}
}
