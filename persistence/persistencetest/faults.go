package persistencetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// runFaults is what the store does when its work is cut short: a context
// that ends in the middle of a Rebuild or a Verify, connections that fail
// under a subscription.
func runFaults(t *testing.T, h Harness) {
	t.Run("SubscribeResumesAfterDatabaseErrors", func(t *testing.T) {
		if h.Disrupt == nil {
			t.Skip("no way to disrupt this database's connections")
		}
		t.Parallel()
		subscribeResumes(t, h)
	})

	// A Rebuild whose context ends returns an error that wraps the
	// context's, wherever it ends: before the first page, between pages,
	// after the last one, and (on a store that builds aside) in the swap
	// after another store appended meanwhile. The projections are as they
	// were, the store works on, and a rebuild afterwards repairs them.
	for _, point := range []string{"Start", "Middle", "End", "Swap"} {
		t.Run("RebuildEndsWithItsContextAt"+point, func(t *testing.T) {
			if point == "Swap" && !h.Durable {
				t.Skip("a private in-memory store rebuilds in one transaction: it has no swap of its own")
			}
			t.Parallel()
			s := setupLong(t, h)
			want := readViews(t, s)
			stale := staleViews(t, s)
			var other *setup
			if h.Durable {
				other = &setup{ctx: s.ctx, store: h.open(t, s.dsn), dsn: s.dsn, h: h}
			}
			ctx, cancel := context.WithCancel(s.ctx)
			defer cancel()
			var built int64 // the total of the build, once known
			cancelled := false
			err := s.store.Rebuild(ctx, &persistence.RebuildOpts{Progress: func(done, total int64) {
				if cancelled {
					return
				}
				if built == 0 {
					built = total
				}
				switch {
				case point == "Start" && done == 0,
					point == "Middle" && done > 0 && done < total,
					point == "End" && done == total,
					point == "Swap" && total > built: // the swap's own page
					cancel()
					cancelled = true
				case point == "Swap" && done == total:
					_, err := other.store.Append(other.ctx, nil, orchestration.SettingChanged{Key: "during", Value: json.RawMessage(`1`), At: at(40)})
					require.NoError(t, err)
					stale = readViews(t, other)
				}
			}})
			require.True(t, cancelled, "the rebuild did not reach %s", point)
			t.Logf("cancelled at %s: %v", point, err)
			require.Error(t, err)
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, stale, readViews(t, s), "a cancelled rebuild changed the projections")
			requireWorksOn(t, s, want)
		})
	}

	// A Verify whose context ends returns an error that wraps the
	// context's, before the first page of its rebuild, between pages and
	// after the last one, and changes nothing.
	for _, point := range []string{"Start", "Middle", "End"} {
		t.Run("VerifyEndsWithItsContextAt"+point, func(t *testing.T) {
			if h.SetVerifyProgress == nil {
				t.Skip("no hook into Verify's progress")
			}
			t.Parallel()
			s := setupLong(t, h)
			want := readViews(t, s)
			stale := staleViews(t, s)
			ctx, cancel := context.WithCancel(s.ctx)
			defer cancel()
			cancelled := false
			h.SetVerifyProgress(s.store, func(done, total int64) {
				if !cancelled && (point == "Start" && done == 0 ||
					point == "Middle" && done > 0 && done < total ||
					point == "End" && done == total) {
					cancel()
					cancelled = true
				}
			})
			rep, err := s.store.Verify(ctx)
			h.SetVerifyProgress(s.store, nil)
			require.True(t, cancelled, "Verify did not reach %s", point)
			t.Logf("cancelled at %s: %v", point, err)
			require.Error(t, err)
			require.ErrorIs(t, err, context.Canceled)
			require.Nil(t, rep)
			require.Equal(t, stale, readViews(t, s), "a cancelled Verify changed the projections")
			rep, err = s.store.Verify(s.ctx)
			require.NoError(t, err)
			require.False(t, rep.OK(), "Verify no longer sees the stale projections")
			requireWorksOn(t, s, want)
		})
	}
}

// staleViews damages the projections of s, as a rebuild would repair them,
// and returns what the readers see then.
func staleViews(t *testing.T, s *setup) views {
	t.Helper()
	for _, q := range []string{"DELETE FROM projection_messages", "UPDATE projection_threads SET title = 'stale'"} {
		_, err := s.store.Client().ExecContext(s.ctx, q)
		require.NoError(t, err)
	}
	return readViews(t, s)
}

// requireWorksOn checks that s works after a cut-short Rebuild or Verify:
// a rebuild brings the projections back to want (and to what was
// appended since), Verify is clean, and appends go on with the projections
// in step: the connection of the cut-short work, whose temporary tables
// hide the stored ones, did not go back to the pool.
func requireWorksOn(t *testing.T, s *setup, want views) {
	t.Helper()
	require.NoError(t, s.store.Rebuild(s.ctx, nil))
	got := readViews(t, s)
	require.Equal(t, want.Threads, got.Threads)
	require.Equal(t, want.Details, got.Details)
	requireVerified(t, s)
	for i := range 3 {
		_, err := s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: "after" + string(rune('a'+i)), Value: json.RawMessage(`2`), At: at(41)})
		require.NoError(t, err)
	}
	requireVerified(t, s)
	require.Contains(t, settingKeys(readViews(t, s).Settings), "afterc")
}

// subscribeResumes follows the log with SubscribeOpts.Resume while
// another store appends batches, each with a command id and sent again
// until it succeeds, and the database's connections are disrupted again
// and again, each time until a read of the subscription fails. The subscription reports each failed read with a
// *RetryError and goes on: it yields every event of the log exactly once,
// in order, and nothing else.
func subscribeResumes(t *testing.T, h Harness) {
	const disruptions = 5
	s := h.setup(t)
	writer := h.open(t, s.dsn)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	var (
		mu      sync.Mutex
		seqs    []int64
		ids     []string
		others  []error
		retries atomic.Int64
		last    atomic.Int64
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		opts := &persistence.SubscribeOpts{Resume: true, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond}
		for rec, err := range s.store.SubscribeWith(ctx, 0, opts) {
			var re *persistence.RetryError
			mu.Lock()
			switch {
			case errors.As(err, &re):
				if re.Err == nil || re.Attempt < 1 || re.Delay < opts.RetryMin || re.Delay > opts.RetryMax {
					others = append(others, fmt.Errorf("a malformed *RetryError: %+v", re))
				}
				retries.Add(1)
			case err != nil:
				others = append(others, err)
			default:
				seqs = append(seqs, rec.Sequence)
				ids = append(ids, rec.EventID)
				last.Store(rec.Sequence)
			}
			mu.Unlock()
		}
	}()

	var written atomic.Int64
	werr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for b := 0; ; b++ {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			evs := make([]orchestration.Event, 1+b%4)
			for i := range evs {
				evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprint("t", b%3), Title: fmt.Sprint(b, ".", i), At: T0}
			}
			opts := &persistence.AppendOpts{CommandID: fmt.Sprint("resume-", b)}
			for {
				if _, err := writer.Append(s.ctx, opts, evs...); err == nil {
					break
				} else if s.ctx.Err() != nil {
					werr <- err
					return
				}
				time.Sleep(5 * time.Millisecond) // disrupted: the same command again
			}
			written.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	disrupted := 0
	for i := range disruptions {
		// Disrupt while the writer is busy and the subscriber keeps up,
		// until the subscription's read fails. A read may also get around
		// a disruption without an error: database/sql drops a connection
		// that fails pgx's ping at checkout and takes another.
		from := written.Load()
		require.Eventually(t, func() bool { return written.Load() >= from+10 }, 30*time.Second, time.Millisecond,
			"disruption %d: the writer is stuck", i)
		before := retries.Load()
		for try := 0; retries.Load() == before; try++ {
			require.Less(t, try, 10, "disruption %d: the subscription yielded no *RetryError", i)
			h.Disrupt(t, s.dsn)
			disrupted++
			deadline := time.Now().Add(time.Second)
			for retries.Load() == before && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	close(stop)
	require.NoError(t, <-werr)
	head, err := writer.Head(s.ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return last.Load() == head }, 30*time.Second, 5*time.Millisecond,
		"the subscription stopped at %d of %d", last.Load(), head)
	cancel()
	<-done

	log := collect(t, s.store.ReplayAll(s.ctx))
	logIDs := make([]string, len(log))
	for i, r := range log {
		logIDs[i] = r.EventID
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, others)
	require.Equal(t, seqRange(1, head), seqs, "every event once, in order")
	require.Equal(t, logIDs, ids)
	require.GreaterOrEqual(t, retries.Load(), int64(disruptions))
	t.Logf("%d events in %d batches; %d disruptions, %d retries", head, written.Load(), disrupted, retries.Load())
}
