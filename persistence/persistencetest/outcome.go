package persistencetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// runOutcome checks that an Append that returns an error wrote nothing.
func runOutcome(t *testing.T, h Harness) {
	t.Run("CanceledAppendsAreAllOrNothing", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		canceledAppends(t, s, 300*h.Large)
	})
}

// canceledAppends runs n appends from a few goroutines at once, each
// with a context that ends at a random moment within about three times
// what an append takes: half of them are canceled, half get a deadline.
// Each must either succeed, its events stored once with the ids it
// returned, or fail with an error that matches its context's (not
// database/sql's "transaction has already been committed or rolled back"
// or "statement is closed") and have written nothing. The projections
// must equal a rebuild, and the store must go on appending.
func canceledAppends(t *testing.T, s *setup, n int) {
	ctx := s.ctx
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	// batch i: one to three settings and a project, each named after it.
	batch := func(i int) []orchestration.Event {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		evs := []orchestration.Event{orchestration.ProjectCreated{
			ProjectID: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("a%d.0", i), WorkspaceRoot: "/w", At: T0}}
		for j := range 1 + rng.IntN(3) {
			evs = append(evs, orchestration.SettingChanged{Key: fmt.Sprintf("a%d.%d", i, j+1), Value: json.RawMessage(`1`), At: T0})
		}
		return evs
	}
	// The time an append takes here, to aim the cancellations.
	var took []time.Duration
	for i := range 20 {
		start := time.Now()
		_, err := s.store.Append(ctx, nil, orchestration.SettingChanged{Key: fmt.Sprintf("warm%d", i), Value: json.RawMessage(`1`), At: T0})
		require.NoError(t, err)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	window := 3 * took[len(took)/2]
	t.Logf("an append takes about %v; contexts end within %v", took[len(took)/2], window)

	type result struct {
		recs     []persistence.Recorded
		err      error
		deadline bool
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	const goroutines = 3
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(n+g)))
			for i := g; i < n; i += goroutines {
				after := time.Duration(rng.Int64N(int64(window) + 1))
				var (
					actx   context.Context
					cancel context.CancelFunc
				)
				deadline := i%2 == 0
				if deadline {
					actx, cancel = context.WithTimeout(ctx, after)
				} else {
					actx, cancel = context.WithCancel(ctx)
					time.AfterFunc(after, cancel)
				}
				recs, err := s.store.Append(actx, nil, batch(i)...)
				cancel()
				results[i] = result{recs, err, deadline}
			}
		})
	}
	wg.Wait()

	stored := map[string][]string{} // append name -> event ids stored, in order
	for _, rec := range collect(t, s.store.ReplayAll(ctx)) {
		var name string
		switch e := rec.Event.(type) {
		case orchestration.ProjectCreated:
			name = e.Name
		case orchestration.SettingChanged:
			name = e.Key
		}
		var i, j int
		if _, err := fmt.Sscanf(name, "a%d.%d", &i, &j); err == nil {
			key := fmt.Sprint(i)
			stored[key] = append(stored[key], rec.EventID)
		}
	}
	var ok, failed int
	for i, r := range results {
		got := stored[fmt.Sprint(i)]
		if r.err != nil {
			failed++
			want := context.Canceled
			if r.deadline {
				want = context.DeadlineExceeded
			}
			require.ErrorIs(t, r.err, want, "append %d: the error does not match its context's", i)
			require.Empty(t, got, "append %d failed (%v) but wrote %d events", i, r.err, len(got))
			continue
		}
		ok++
		ids := make([]string, len(r.recs))
		for k, rec := range r.recs {
			ids[k] = rec.EventID
		}
		require.Len(t, r.recs, len(batch(i)), "append %d", i)
		require.Equal(t, ids, got, "append %d succeeded: its events must be stored once, with the ids it returned", i)
	}
	t.Logf("%d appends: %d succeeded, %d failed with their context's error", n, ok, failed)

	report, err := s.store.Verify(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
	_, err = s.store.Append(ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`1`), At: T0})
	require.NoError(t, err)
}
