package persistence_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/bits"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/peonhq/peon/internal/cputime"
)

// batchSizes are the batch sizes of the shapes' benchmarks (issue 12):
// one just past the old limit of 8 prepared rows, and sizes between the
// powers of two.
var batchSizes = []int{9, 37, 100, 300}

// BenchmarkAppendBatch appends batches of batchSizes events in one
// transaction each on a SQLite file: the store (bare log) against raw
// database/sql with the same multi-row INSERT (impl=raw, see
// rawAppender), alternating. events=1to600 cycles through every size
// from 1 to 600, one Append each. See docs/BENCHMARKS.md "Prepared
// shapes (issue 12)".
func BenchmarkAppendBatch(b *testing.B) {
	ctx := context.Background()
	for _, n := range batchSizes {
		events := benchEvents(0, n)
		b.Run(fmt.Sprintf("events=%d/impl=raw", n), func(b *testing.B) {
			a := newRawAppender(openRaw(b, newRawFile(b)))
			m := startMeter(b)
			for b.Loop() {
				if err := a.append(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			m.report(n)
		})
		b.Run(fmt.Sprintf("events=%d/impl=store", n), func(b *testing.B) {
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
	all := benchEvents(0, mixedMax)
	b.Run("events=1to600/impl=raw", func(b *testing.B) {
		a := newRawAppender(openRaw(b, newRawFile(b)))
		reportMixed(b, func(n int) error { return a.append(ctx, all[:n]) })
	})
	b.Run("events=1to600/impl=store", func(b *testing.B) {
		s := openBenchStore(b, filepath.Join(b.TempDir(), "store.db"))
		defer s.Close()
		reportMixed(b, func(n int) error {
			_, err := s.Append(ctx, nil, all[:n]...)
			return err
		})
	})
}

// mixedMax is the largest batch of the events=1to600 benchmarks.
const mixedMax = 600

// reportMixed runs b.Loop with one call of appendN per iteration, of 1,
// 2, … mixedMax events and again, and reports events/s and events/cpu-s
// (this process's CPU: on PostgreSQL the server's is not in it).
func reportMixed(b *testing.B, appendN func(n int) error) {
	i, total, cpu := 0, 0, cputime.Used()
	for b.Loop() {
		n := i%mixedMax + 1
		i++
		if err := appendN(n); err != nil {
			b.Fatal(err)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	if d := cputime.Used() - cpu; d > time.Duration(0) {
		b.ReportMetric(float64(total)/d.Seconds(), "events/cpu-s")
	}
}

// BenchmarkInsertScheme writes batches of 100 and 300 events with raw
// database/sql on a SQLite file in four ways, to choose the store's
// (see persistence/shapes.go): scheme=text, one multi-row INSERT run from
// its text (parsed each time); exact, that INSERT prepared once; pow2,
// prepared INSERTs of the batch's powers of two (100 = 64+32+4); row, a
// prepared one-row INSERT per event.
func BenchmarkInsertScheme(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100, 300} {
		events := benchEvents(0, n)
		for _, scheme := range []string{"text", "exact", "pow2", "row"} {
			b.Run(fmt.Sprintf("n=%d/scheme=%s", n, scheme), func(b *testing.B) {
				db := openRaw(b, newRawFile(b))
				a := newRawAppender(db)
				prep := map[int]*sql.Stmt{}
				stmt := func(k int) *sql.Stmt {
					st, ok := prep[k]
					if !ok {
						var err error
						st, err = db.Prepare(a.statement(k))
						if err != nil {
							b.Fatal(err)
						}
						prep[k] = st
					}
					return st
				}
				var sizes []int
				switch scheme {
				case "text", "exact":
					sizes = []int{n}
				case "pow2":
					for r := n; r > 0; {
						k := 1 << (bits.Len(uint(r)) - 1)
						sizes = append(sizes, k)
						r -= k
					}
				case "row":
					for range n {
						sizes = append(sizes, 1)
					}
				}
				m := startMeter(b)
				for b.Loop() {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					now := time.Now().UTC()
					i := 0
					for _, k := range sizes {
						args := make([]any, 0, k*12)
						for _, e := range events[i : i+k] {
							payload, _ := json.Marshal(e)
							st := e.StreamID()
							a.versions[st]++
							a.seq++
							args = append(args, a.seq, uuid.Must(uuid.NewV7()).String(), st, a.versions[st], e.EventType(), 1,
								string(payload), e.OccurredAt(), now, nil, nil, nil)
						}
						i += k
						if scheme == "text" {
							_, err = tx.ExecContext(ctx, a.statement(k), args...)
						} else {
							_, err = tx.StmtContext(ctx, stmt(k)).ExecContext(ctx, args...)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				m.report(n)
			})
		}
	}
}
