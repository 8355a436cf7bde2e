package bench_test

// BenchmarkPostgresBatch compares a batch of 100 events in one call:
// peon's Append (bare log and projected), watermill-sql v3.1.0 publishing
// 100 messages in one Publish, and raw database/sql on pgx writing the
// same rows into peon's events table with one multi-row INSERT in a
// transaction, in one run:
//
//	PEON_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  go test -C bench -run '^$' -bench PostgresBatch -count 6 | tee pgbatch.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl pgbatch.txt

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

const batch = 100 // events per call

// batchEvents returns the events of call i: deltas of writer 0's reply.
func batchEvents(i int) []orchestration.Event {
	evs := make([]orchestration.Event, batch)
	for j := range evs {
		evs[j] = delta(0, i*batch+j)
	}
	return evs
}

func BenchmarkPostgresBatch(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=watermill", func(b *testing.B) {
		db, err := sql.Open("pgx", schema(b))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{
			SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true,
		}, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			msgs := make([]*message.Message, batch)
			for j, e := range batchEvents(i) {
				payload, err := json.Marshal(e)
				if err != nil {
					b.Fatal(err)
				}
				msgs[j] = message.NewMessage(watermill.NewUUID(), payload)
			}
			i++
			if err := pub.Publish("events", msgs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("impl=raw", func(b *testing.B) {
		dsn := schema(b)
		s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
		if err != nil {
			b.Fatal(err)
		}
		s.Close() // it made the table
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var sb strings.Builder
		sb.WriteString("INSERT INTO events (sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at) VALUES ")
		for j := range batch {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", 9*j+1, 9*j+2, 9*j+3, 9*j+4, 9*j+5, 9*j+6, 9*j+7, 9*j+8, 9*j+9)
		}
		insert := sb.String()
		seq, i := int64(0), 0
		for b.Loop() {
			args := make([]any, 0, 9*batch)
			now := time.Now().UTC()
			for _, e := range batchEvents(i) {
				payload, err := orchestration.Encode(e)
				if err != nil {
					b.Fatal(err)
				}
				seq++ // one stream: its version is the sequence
				args = append(args, seq, uuid.Must(uuid.NewV7()).String(), e.StreamID(), seq, e.EventType(), 1, string(payload), e.OccurredAt(), now)
			}
			i++
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, proj := range []bool{false, true} {
		b.Run(fmt.Sprintf("impl=peon/proj=%v", map[bool]string{false: "off", true: "on"}[proj]), func(b *testing.B) {
			s, err := persistence.OpenWith(ctx, schema(b), &persistence.Options{NoProjections: !proj})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Append(ctx, nil,
				orchestration.ThreadCreated{ThreadID: "t0", ProjectID: "p", Title: "t", Model: "m", At: time.Now()},
				orchestration.TurnStarted{ThreadID: "t0", TurnID: "u0", At: time.Now()},
				orchestration.MessageAdded{ThreadID: "t0", TurnID: "u0", MessageID: "m0", Role: orchestration.RoleAssistant, Streaming: true, At: time.Now()},
			); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if _, err := s.Append(ctx, nil, batchEvents(i)...); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
