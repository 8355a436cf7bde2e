package persistence

import (
	"context"
	"time"

	"github.com/peonhq/peon/orchestration"
)

// SetProgressEvery sets how often a long catch-up or rebuild logs its
// progress, and returns a func that restores the default.
func SetProgressEvery(d time.Duration) (restore func()) {
	old := progressEvery
	progressEvery = d
	return func() { progressEvery = old }
}

// TelemetryOffAllocs reports the allocations of Append's telemetry on a
// store opened without a TracerProvider and a MeterProvider, per append
// of events.
func TelemetryOffAllocs(allocs func(runs int, f func()) float64, events []orchestration.Event) float64 {
	tel := newTelemetry(&Options{}, sqliteDialect{})
	ctx := context.Background()
	return allocs(100, func() {
		_, done := tel.startAppend(ctx, events)
		done(nil, true, nil)
		_, end := tel.start(ctx, "peon.replay.page")
		end(nil)
	})
}
