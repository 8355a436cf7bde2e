package persistence

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppendGateAdmit checks the floor an append's deadline is judged
// by: none without samples, the least recent one, samples older than
// floorMaxAge forgotten; a refusal matches context.DeadlineExceeded and
// refuse returns it only when the deadline has ended.
func TestAppendGateAdmit(t *testing.T) {
	t.Parallel()
	g := newAppendGate()
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	require.NoError(t, g.admit(short), "no floor yet")
	require.NoError(t, g.admit(t.Context()), "no deadline")

	g.done(300 * time.Millisecond)
	g.done(100 * time.Millisecond)
	g.done(200 * time.Millisecond)
	require.Equal(t, 100*time.Millisecond, g.floor())
	err := g.admit(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "an append takes at least 100ms here; it was not begun")
	require.ErrorIs(t, refuse(short, err), context.DeadlineExceeded)
	require.ErrorIs(t, short.Err(), context.DeadlineExceeded, "refuse returned before the deadline")

	long, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	require.NoError(t, g.admit(long))

	ended, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, g.admit(ended), context.Canceled)

	// Old samples are forgotten.
	g.mu.Lock()
	for i := range g.recent {
		g.recent[i].at = g.recent[i].at.Add(-2 * floorMaxAge)
	}
	g.mu.Unlock()
	require.Zero(t, g.floor())
}

// TestAppendGateEnter: a caller waits for the gate with its context.
func TestAppendGateEnter(t *testing.T) {
	t.Parallel()
	g := newAppendGate()
	require.NoError(t, g.enter(t.Context()))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, g.enter(ctx), context.DeadlineExceeded)
	g.leave()
	require.NoError(t, g.enter(t.Context()))
	g.leave()
}

// TestWorkContext: the work context outlives the caller's by
// appendGrace, and ends at once when stopped.
func TestWorkContext(t *testing.T) {
	t.Parallel()
	caller, cancel := context.WithCancel(t.Context())
	work, stop := workContext(appendGrace, caller)
	defer stop()
	start := time.Now()
	cancel()
	<-work.Done()
	require.GreaterOrEqual(t, time.Since(start), appendGrace)

	work, stop = workContext(appendGrace, t.Context())
	stop()
	require.Error(t, work.Err())
}
