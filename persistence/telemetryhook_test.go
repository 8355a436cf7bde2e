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

// TelemetryOff returns what Append and a replay page do for telemetry on
// a store opened without a TracerProvider and a MeterProvider, for an
// append of events.
func TelemetryOff(events []orchestration.Event) func() {
	tel := newTelemetry(&Options{}, sqliteDialect{})
	ctx := context.Background()
	return func() {
		_, done := tel.startAppend(ctx, events)
		done(nil, true, nil)
		_, end := tel.start(ctx, "peon.replay.page")
		end(nil)
	}
}
