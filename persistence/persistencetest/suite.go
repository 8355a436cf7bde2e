// Package persistencetest is the conformance suite that every dialect of
// the store runs, and the fixtures its tests share. A dialect's test calls
// Run with a Harness that hands each test its own empty database.
package persistencetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// Harness gives the suite fresh databases of one dialect.
type Harness struct {
	// NewDSN returns the DSN of an empty database that only the calling
	// test uses, removed when it ends.
	NewDSN func(t *testing.T) string
	// Durable is true when a DSN may be opened again and keeps its data
	// (false for in-memory SQLite).
	Durable bool
	// ValidatesJSON is true when the database itself refuses a payload
	// that is not JSON (PostgreSQL's json type).
	ValidatesJSON bool
	// TimePrecision is the finest time the database's timestamp columns
	// hold (a microsecond on PostgreSQL); 0 means nanoseconds. The log
	// keeps event times exact either way (they come from the payload); the
	// projection tables hold them at this precision.
	TimePrecision time.Duration
	// Large scales the bigger tests; 1 is the default.
	Large int
	// SetVerifyProgress, when set, makes Verify on a store call progress
	// while it builds the rebuild it compares with, as Rebuild calls
	// RebuildOpts.Progress. Verify has no such option; package
	// persistence's own tests pass a hook that only their build has.
	SetVerifyProgress func(s *persistence.Store, progress func(done, total int64))
	// Disrupt, when set, makes the statements of the stores open on dsn
	// fail for a moment, as a connection that a server terminates does:
	// on PostgreSQL it terminates the server processes of their
	// connections; on SQLite, which has none, it renames the events
	// table away for a moment. It returns when the disruption is over.
	Disrupt func(t *testing.T, dsn string)
	// ObserveGroups, when set, makes a store call observe with the number
	// of Appends each time it begins a group's transaction (one for a
	// lone Append); FailProjection, when set, makes the projection of
	// every Append on a store for whose records fail returns true fail in
	// the database, after its projection statements ran. Package
	// persistence's own tests pass hooks that only their build has.
	ObserveGroups  func(s *persistence.Store, observe func(members int))
	FailProjection func(s *persistence.Store, fail func(recs []persistence.Recorded) bool)
}

// setup is what most tests need.
type setup struct {
	ctx   context.Context
	store *persistence.Store
	dsn   string
	h     Harness
}

func (h Harness) setup(t *testing.T) *setup {
	t.Helper()
	dsn := h.NewDSN(t)
	s := h.open(t, dsn)
	return &setup{ctx: t.Context(), store: s, dsn: dsn, h: h}
}

// open opens dsn and closes the store when the test ends.
func (h Harness) open(t *testing.T, dsn string) *persistence.Store {
	t.Helper()
	s, err := persistence.Open(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	if h.Large == 0 {
		h.Large = 1
	}
	t.Run("Store", func(t *testing.T) { runStore(t, h) })
	t.Run("Subscribe", func(t *testing.T) { runSubscribe(t, h) })
	t.Run("Projections", func(t *testing.T) { runProjections(t, h) })
	t.Run("Streaming", func(t *testing.T) { runStreaming(t, h) })
	t.Run("Faults", func(t *testing.T) { runFaults(t, h) })
	t.Run("Locks", func(t *testing.T) { runLocks(t, h) })
	t.Run("ReadOnly", func(t *testing.T) { runReadOnly(t, h) })
	t.Run("Outcome", func(t *testing.T) { runOutcome(t, h) })
	t.Run("Admission", func(t *testing.T) { runAdmission(t, h) })
	t.Run("StreamVersion", func(t *testing.T) { runStreamVersion(t, h) })
	t.Run("Stats", func(t *testing.T) { runStats(t, h) })
	t.Run("Prune", func(t *testing.T) { runPrune(t, h) })
	t.Run("Group", func(t *testing.T) { runGroup(t, h) })
	t.Run("Compact", func(t *testing.T) { runCompact(t, h) })
	t.Run("Maintain", func(t *testing.T) { runMaintain(t, h) })
}
