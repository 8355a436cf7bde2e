package persistence_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
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
	i, total, cpu := 0, 0, cpuTime()
	for b.Loop() {
		n := i%mixedMax + 1
		i++
		if err := appendN(n); err != nil {
			b.Fatal(err)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	if d := cpuTime() - cpu; d > time.Duration(0) {
		b.ReportMetric(float64(total)/d.Seconds(), "events/cpu-s")
	}
}
