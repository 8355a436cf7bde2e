package persistence_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// A store logs its operational events to Options.Logger, and traces and
// measures through the OpenTelemetry API: here the application's global
// providers, which its own SDK set up (otel.SetTracerProvider,
// otel.SetMeterProvider) and which do nothing until it does. The
// handler drops the time and the durations so that the output is stable.
func ExampleOpenWith_observability() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Value.Kind() == slog.KindDuration {
				return slog.Attr{}
			}
			return a
		},
	}))
	store, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{
		Logger:         logger,
		TracerProvider: otel.GetTracerProvider(),
		MeterProvider:  otel.GetMeterProvider(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	// Appends are traced and measured, never logged.
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if _, err := store.Append(ctx, nil, orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at}); err != nil {
		fmt.Println(err)
		return
	}
	if err := store.Rebuild(ctx, nil); err != nil {
		fmt.Println(err)
	}
	// Output:
	// level=INFO msg="peon: migration applied" version=20261128130707 description=init
	// level=INFO msg="peon: migration applied" version=20261202154920 description=compactions
	// level=INFO msg="peon: migration applied" version=20261202160558 description=message_chunks
	// level=INFO msg="peon: migration applied" version=20261202164512 description=stream_tombstones
	// level=INFO msg="peon: migration applied" version=20261202170200 description=message_chunks_by_sequence
	// level=INFO msg="peon: migration applied" version=20261203083000 description=message_deltas_in_the_log
	// level=INFO msg="peon: store opened" dialect=sqlite target=:memory: read_only=false
	// level=INFO msg="peon: projection rebuild started"
	// level=INFO msg="peon: projection rebuild done" events=1 undecodable=0 missing=0
}
