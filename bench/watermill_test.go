package bench_test

// BenchmarkPostgresSingle compares peon's single-event Appends with
// watermill-sql v3.1.0 publishing single messages to PostgreSQL, from 1,
// 4 and 16 goroutines, in one run:
//
//	PEON_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  go test -C bench -run '^$' -bench PostgresSingle -count 6 | tee pg.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl pg.txt

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/peonhq/peon/internal/cputime"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// schema creates an empty schema on the server of $PEON_TEST_POSTGRES_URL,
// drops it when the benchmark ends, and returns a URL with it as the
// search_path.
func schema(b *testing.B) string {
	b.Helper()
	base := os.Getenv("PEON_TEST_POSTGRES_URL")
	if base == "" {
		b.Skip("PEON_TEST_POSTGRES_URL is not set")
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "peon_bench_" + hex.EncodeToString(r[:])
	exec := func(stmt string) {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), stmt); err != nil {
			b.Fatal(err)
		}
	}
	exec("CREATE SCHEMA " + name)
	b.Cleanup(func() { exec("DROP SCHEMA " + name + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// delta is event i of writer w: a token of a streamed reply.
func delta(w, i int) orchestration.MessageDelta {
	return orchestration.MessageDelta{ThreadID: fmt.Sprint("t", w), TurnID: fmt.Sprint("u", w), MessageID: fmt.Sprint("m", w),
		Delta: fmt.Sprintf("token %d of the reply ", i), At: time.Date(2026, 11, 28, 9, 0, 0, i, time.UTC)}
}

const calls = 16 // single-event calls per iteration, shared among the writers

func BenchmarkPostgresSingle(b *testing.B) {
	ctx := context.Background()
	for _, writers := range []int{1, 4, 16} {
		name := fmt.Sprintf("writers=%d", writers)
		b.Run(name+"/impl=watermill", func(b *testing.B) {
			db, err := sql.Open("pgx", schema(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(writers + 2)
			db.SetMaxIdleConns(writers + 2)
			pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{
				SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true,
			}, watermill.NopLogger{})
			if err != nil {
				b.Fatal(err)
			}
			// The first Publish creates the table (concurrent first ones race
			// on CREATE TABLE IF NOT EXISTS).
			if err := pub.Publish("events", message.NewMessage(watermill.NewUUID(), []byte(`{}`))); err != nil {
				b.Fatal(err)
			}
			next := make([]int, writers)
			parallel(b, writers, func(w int) error {
				payload, err := json.Marshal(delta(w, next[w]))
				next[w]++
				if err != nil {
					return err
				}
				return pub.Publish("events", message.NewMessage(watermill.NewUUID(), payload))
			})
		})
		for _, proj := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/impl=peon/proj=%v", name, map[bool]string{false: "off", true: "on"}[proj]), func(b *testing.B) {
				s, err := persistence.OpenWith(ctx, schema(b), &persistence.Options{NoProjections: !proj})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				for w := range writers { // the threads the deltas go to
					if _, err := s.Append(ctx, nil,
						orchestration.ThreadCreated{ThreadID: fmt.Sprint("t", w), ProjectID: "p", Title: "t", Model: "m", At: time.Now()},
						orchestration.TurnStarted{ThreadID: fmt.Sprint("t", w), TurnID: fmt.Sprint("u", w), At: time.Now()},
						orchestration.MessageAdded{ThreadID: fmt.Sprint("t", w), TurnID: fmt.Sprint("u", w), MessageID: fmt.Sprint("m", w),
							Role: orchestration.RoleAssistant, Streaming: true, At: time.Now()}); err != nil {
						b.Fatal(err)
					}
				}
				next := make([]int, writers)
				parallel(b, writers, func(w int) error {
					_, err := s.Append(ctx, nil, delta(w, next[w]))
					next[w]++
					return err
				})
			})
		}
	}
}

// parallel runs b.Loop with writers goroutines sharing calls calls of do
// per iteration, and reports events/s, events per CPU-second of this
// process (the server's CPU is not counted) and the 50th and 99th percentile of
// a call's latency in µs.
func parallel(b *testing.B, writers int, do func(w int) error) {
	lat := make([][]time.Duration, writers)
	cpu := cputime.Used()
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
	b.ReportMetric(float64(calls)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if d := cputime.Used() - cpu; d > 0 { // this process's CPU time, not the server's
		b.ReportMetric(float64(calls)*float64(b.N)/d.Seconds(), "events/cpu-s")
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	at := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
}
