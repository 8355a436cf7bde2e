package persistencetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// commandIDIsBoundToItsEvents: an Append that repeats a stored CommandID
// with the same events (their `at` aside) returns the first records; with
// other events it is a *CommandConflictError and writes nothing.
func commandIDIsBoundToItsEvents(t *testing.T, h Harness) {
	t.Parallel()
	s := h.setup(t)
	events := Catalogue()[:3] // project.created, project.renamed, thread.created
	opts := &persistence.AppendOpts{CommandID: "cmd-1", CorrelationID: "c"}
	first, err := s.store.Append(s.ctx, opts, events...)
	require.NoError(t, err)

	// The same events, even stamped later, are a retry of the command.
	later := make([]orchestration.Event, len(events))
	for i, e := range events {
		later[i] = withAt(e, e.OccurredAt().Add(time.Hour).In(time.FixedZone("X", 3600)))
	}
	for _, retry := range [][]orchestration.Event{events, later} {
		again, err := s.store.Append(s.ctx, &persistence.AppendOpts{CommandID: "cmd-1"}, retry...)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}

	others := map[string][]orchestration.Event{
		"OtherType":    {events[0], events[1], orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the build", At: at(2)}},
		"OtherStream":  {events[0], orchestration.ProjectRenamed{ProjectID: "p2", Name: "peon-core", At: at(1)}, events[2]},
		"OtherPayload": {events[0], orchestration.ProjectRenamed{ProjectID: "p1", Name: "peon-next", At: at(1)}, events[2]},
		"Fewer":        events[:2],
		"More":         append(append([]orchestration.Event{}, events...), Catalogue()[3]),
		"Reordered":    {events[1], events[0], events[2]},
	}
	check := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, persistence.ErrCommandConflict)
		var cc *persistence.CommandConflictError
		require.ErrorAs(t, err, &cc)
		require.Equal(t, "cmd-1", cc.CommandID)
		require.Equal(t, []int64{1, 2, 3}, cc.Sequences)
		require.ErrorContains(t, err, "cmd-1")
		require.ErrorContains(t, err, "1 to 3")
		requireHead(t, s, 3)
	}
	for name, evs := range others {
		t.Run(name, func(t *testing.T) {
			_, err := s.store.Append(s.ctx, &persistence.AppendOpts{CommandID: "cmd-1"}, evs...)
			check(t, err)
			tx, err := s.store.Client().Tx(s.ctx)
			require.NoError(t, err)
			_, err = s.store.AppendTx(s.ctx, tx, &persistence.AppendOpts{CommandID: "cmd-1"}, evs...)
			require.ErrorIs(t, err, persistence.ErrCommandConflict)
			require.NoError(t, tx.Commit())
			check(t, err)
		})
	}
	if h.Durable {
		require.NoError(t, s.store.Close())
		reopened := h.open(t, s.dsn)
		_, err = reopened.Append(s.ctx, opts, others["OtherPayload"]...)
		require.ErrorIs(t, err, persistence.ErrCommandConflict, "after a restart too")
		again, err := reopened.Append(s.ctx, opts, later...)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
}

// withAt returns a copy of the catalogued value e with its `at` set to t.
func withAt(e orchestration.Event, t time.Time) orchestration.Event {
	switch e := e.(type) {
	case orchestration.ProjectCreated:
		e.At = t
		return e
	case orchestration.ProjectRenamed:
		e.At = t
		return e
	case orchestration.ThreadCreated:
		e.At = t
		return e
	}
	panic(fmt.Sprintf("withAt: %T", e))
}
