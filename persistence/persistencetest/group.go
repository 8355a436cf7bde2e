package persistencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// runGroup tests group commit: concurrent Appends share transactions, and
// each keeps its own outcome.
func runGroup(t *testing.T, h Harness) {
	t.Run("RacingAppendersGetTheirOwnOutcomes", func(t *testing.T) { racingAppenders(t, h) })

	t.Run("ConcurrentAppendsShareTransactions", func(t *testing.T) {
		t.Parallel()
		if h.ObserveGroups == nil {
			t.Skip("the harness cannot observe groups")
		}
		su := h.setup(t)
		var mu sync.Mutex
		var groups []int
		hold := make(chan struct{})
		h.ObserveGroups(su.store, func(n int) {
			mu.Lock()
			groups = append(groups, n)
			first := len(groups) == 1
			mu.Unlock()
			if first {
				<-hold // the Appends that come meanwhile queue
			}
		})
		const writers = 16
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				_, err := su.store.Append(su.ctx, nil, orchestration.SettingChanged{
					Key: fmt.Sprintf("w%d", w), Value: []byte("1"), At: T0})
				require.NoError(t, err)
			})
		}
		time.Sleep(200 * time.Millisecond)
		close(hold)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, writers, sum(groups), "every Append ran in one group")
		require.Less(t, len(groups), 4, "%d concurrent Appends committed in %d transactions: %v", writers, len(groups), groups)
		head, err := su.store.Head(su.ctx)
		require.NoError(t, err)
		require.EqualValues(t, writers, head)
	})

	t.Run("ManyWritersShareTransactions", func(t *testing.T) {
		t.Parallel()
		if h.ObserveGroups == nil {
			t.Skip("the harness cannot observe groups")
		}
		su := h.setup(t)
		var mu sync.Mutex
		var groups []int
		h.ObserveGroups(su.store, func(n int) {
			mu.Lock()
			defer mu.Unlock()
			groups = append(groups, n)
		})
		const writers, each = 16, 20
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					_, err := su.store.Append(su.ctx, nil, orchestration.SettingChanged{
						Key: fmt.Sprintf("w%d", w), Value: []byte(fmt.Sprint(i)), At: at(i)})
					require.NoError(t, err)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, writers*each, sum(groups), "every Append ran in one group")
		require.Less(t, len(groups), writers*each, "%d concurrent Appends committed in as many transactions", writers*each)
		t.Logf("%d Appends from %d writers in %d transactions", writers*each, writers, len(groups))
	})

	t.Run("LoneWriterDoesNotWait", func(t *testing.T) {
		t.Parallel()
		if h.ObserveGroups == nil {
			t.Skip("the harness cannot observe groups")
		}
		su := h.setup(t)
		var began time.Time
		var sizes []int
		h.ObserveGroups(su.store, func(n int) { began, sizes = time.Now(), append(sizes, n) })
		var waits []time.Duration
		for i := range 50 {
			called := time.Now()
			_, err := su.store.Append(su.ctx, nil, orchestration.SettingChanged{Key: "k", Value: []byte(fmt.Sprint(i)), At: at(i)})
			require.NoError(t, err)
			waits = append(waits, began.Sub(called))
		}
		require.Equal(t, slices.Repeat([]int{1}, 50), sizes, "a lone writer's Appends are groups of one")
		slices.Sort(waits)
		// Without a timer the transaction begins as soon as the call is
		// made: microseconds. A timer of a millisecond or more shows here.
		require.Less(t, waits[len(waits)/2], time.Millisecond, "median wait before the transaction began: %v", waits)
	})

	t.Run("CanceledWhileQueuedLeavesTheQueue", func(t *testing.T) {
		t.Parallel()
		if h.ObserveGroups == nil {
			t.Skip("the harness cannot observe groups")
		}
		su := h.setup(t)
		hold, held := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		h.ObserveGroups(su.store, func(int) {
			if first.CompareAndSwap(false, true) {
				close(held)
				<-hold // the first group waits: the next Appends queue
			}
		})
		leader := make(chan error, 1)
		go func() {
			_, err := su.store.Append(su.ctx, nil, orchestration.SettingChanged{Key: "a", Value: []byte("1"), At: T0})
			leader <- err
		}()
		<-held
		ctx, cancel := context.WithCancel(su.ctx)
		queued := make(chan error, 1)
		go func() {
			_, err := su.store.Append(ctx, nil, orchestration.SettingChanged{Key: "canceled", Value: []byte("1"), At: T0})
			queued <- err
		}()
		later := make(chan error, 1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			_, err := su.store.Append(su.ctx, nil, orchestration.SettingChanged{Key: "b", Value: []byte("1"), At: T0})
			later <- err
		}()
		time.Sleep(50 * time.Millisecond) // both are queued
		cancel()
		select {
		case err := <-queued:
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, "nothing was written")
		case <-time.After(5 * time.Second):
			t.Fatal("a queued Append whose context ended was not answered while the group before it ran")
		}
		close(hold)
		require.NoError(t, <-leader)
		require.NoError(t, <-later)
		var keys []string
		for rec, err := range su.store.ReplayAll(su.ctx) {
			require.NoError(t, err)
			keys = append(keys, rec.Event.(orchestration.SettingChanged).Key)
		}
		require.Equal(t, []string{"a", "b"}, keys)
	})
}

func sum(ns []int) int {
	total := 0
	for _, n := range ns {
		total += n
	}
	return total
}

// attempt is one Append of racingAppenders and what it returned.
type attempt struct {
	kind     string
	opts     *persistence.AppendOpts
	events   []orchestration.Event
	expected int64 // for "expected": the version it expected
	recs     []persistence.Recorded
	err      error
}

// racingAppenders has 16 goroutines append 50 times each, mixing plain
// appends, expected versions that conflict, command ids repeated with the
// same and with other events, appends whose projection fails inside the
// database and invalid events, and proves that each got exactly its own
// outcome.
func racingAppenders(t *testing.T, h Harness) {
	t.Parallel()
	if h.ObserveGroups == nil || h.FailProjection == nil {
		t.Skip("the harness cannot observe groups or fail a projection")
	}
	su := h.setup(t)
	s := su.store
	const writers, each, nstreams = 16, 50, 4
	project := func(i int) string { return fmt.Sprintf("p%d", i%nstreams) }
	var creates []orchestration.Event
	for i := range nstreams {
		creates = append(creates, orchestration.ProjectCreated{ProjectID: project(i), Name: "start", WorkspaceRoot: "/w", At: T0})
	}
	_, err := s.Append(su.ctx, nil, creates...)
	require.NoError(t, err)

	var multi, faults atomic.Int64
	h.ObserveGroups(s, func(n int) {
		if n > 1 {
			multi.Add(1)
		}
	})
	h.FailProjection(s, func(recs []persistence.Recorded) bool {
		for _, r := range recs {
			if e, ok := r.Event.(orchestration.ProjectRenamed); ok && strings.HasPrefix(e.Name, "fail") {
				faults.Add(1)
				return true
			}
		}
		return false
	})

	rename := func(p, name string, n int) orchestration.ProjectRenamed {
		return orchestration.ProjectRenamed{ProjectID: p, Name: name, At: at(n)}
	}
	results := make([][]*attempt, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			known := map[string]int64{} // the versions this writer last saw
			for i := range each {
				a := &attempt{}
				block := i / 10
				switch (w + i) % 10 {
				case 0, 1, 2:
					a.kind = "plain"
					a.events = []orchestration.Event{rename(project(w+i), fmt.Sprintf("w%d-%d", w, i), i)}
				case 3, 4:
					a.kind = "expected"
					st := "project:" + project(w+i)
					a.expected = max(known[st], 1)
					a.opts = &persistence.AppendOpts{ExpectedVersions: map[string]int64{st: a.expected}}
					a.events = []orchestration.Event{rename(project(w+i), fmt.Sprintf("w%d-%d", w, i), i)}
				case 5:
					a.kind = "plain"
					a.events = []orchestration.Event{
						rename(project(w), fmt.Sprintf("w%d-%d-a", w, i), i),
						rename(project(w+1), fmt.Sprintf("w%d-%d-b", w, i), i),
						orchestration.SettingChanged{Key: fmt.Sprintf("w%d", w), Value: []byte(fmt.Sprint(i)), At: at(i)},
					}
				case 6:
					a.kind = "same"
					a.opts = &persistence.AppendOpts{CommandID: fmt.Sprintf("same-%d", block)}
					a.events = []orchestration.Event{rename(project(block), fmt.Sprintf("same-%d", block), block)}
				case 7:
					a.kind = "differs"
					a.opts = &persistence.AppendOpts{CommandID: fmt.Sprintf("differs-%d", block)}
					a.events = []orchestration.Event{rename(project(block), fmt.Sprintf("differs-%d-w%d", block, w), block)}
				case 8:
					a.kind = "fails"
					a.events = []orchestration.Event{
						rename(project(w+i), fmt.Sprintf("ok-w%d-%d", w, i), i),
						rename(project(w+i+1), fmt.Sprintf("fail-w%d-%d", w, i), i),
					}
				case 9:
					a.kind = "invalid"
					a.events = []orchestration.Event{rename(project(w), "fine", i), orchestration.ProjectRenamed{ProjectID: project(w), At: at(i)}}
				}
				a.recs, a.err = s.Append(su.ctx, a.opts, a.events...)
				for _, r := range a.recs {
					known[r.StreamID] = max(known[r.StreamID], r.StreamVersion)
				}
				var vc *persistence.VersionConflictError
				if errors.As(a.err, &vc) {
					known[vc.Stream] = max(known[vc.Stream], vc.Actual)
				}
				results[w] = append(results[w], a)
			}
		})
	}
	wg.Wait()
	require.Positive(t, multi.Load(), "no group of more than one Append formed")

	log := collect(t, s.ReplayAll(su.ctx))
	for i, r := range log {
		require.EqualValues(t, i+1, r.Sequence, "the log has a gap")
	}
	final := map[string]int64{}
	for _, r := range log {
		require.Equal(t, final[r.StreamID]+1, r.StreamVersion, "stream %s skips a version at sequence %d", r.StreamID, r.Sequence)
		final[r.StreamID] = r.StreamVersion
	}

	owner := map[string]*attempt{}   // event id → the Append that stored it
	commands := map[string][]int64{} // command id → its stored sequences
	var conflicts, repeats, failed int
	for _, rs := range results {
		for _, a := range rs {
			switch {
			case a.err == nil:
				require.Len(t, a.recs, len(a.events))
				for j, r := range a.recs {
					require.Equal(t, a.recs[0].Sequence+int64(j), r.Sequence, "an Append's sequences are not contiguous")
					stored := log[r.Sequence-1]
					require.Equal(t, stored.EventID, r.EventID, "the records returned are not the log's at %d", r.Sequence)
					require.Equal(t, stored.StreamID, r.StreamID)
					require.Equal(t, stored.StreamVersion, r.StreamVersion)
					require.Equal(t, stored.Type, r.Type)
					require.Equal(t, stored.CommandID, r.CommandID)
					require.Equal(t, a.events[j].StreamID(), r.StreamID)
					if prev, ok := owner[r.EventID]; ok && prev != a {
						require.NotNil(t, a.opts, "two Appends without a command got the same event %s", r.EventID)
						require.Equal(t, prev.opts.CommandID, a.opts.CommandID)
						repeats++
					}
					owner[r.EventID] = a
				}
				if a.opts != nil && a.opts.CommandID != "" {
					seqs := sequences(a.recs)
					if prev, ok := commands[a.opts.CommandID]; ok {
						require.Equal(t, prev, seqs, "command %s answered with other records", a.opts.CommandID)
					}
					commands[a.opts.CommandID] = seqs
				}
				if a.kind == "expected" {
					// In the serial order of the commits the stream was at
					// the expected version just before this Append.
					require.Equal(t, a.expected+1, a.recs[0].StreamVersion)
				}
				require.NotContains(t, []string{"fails", "invalid"}, a.kind, "an Append that must fail succeeded")
			case a.kind == "expected":
				var vc *persistence.VersionConflictError
				require.ErrorAs(t, a.err, &vc)
				require.Equal(t, a.opts.ExpectedVersions, map[string]int64{vc.Stream: vc.Expected})
				require.Greater(t, vc.Actual, vc.Expected, "the stream had moved past what the writer saw")
				require.LessOrEqual(t, vc.Actual, final[vc.Stream])
				conflicts++
			case a.kind == "differs":
				var ce *persistence.CommandConflictError
				require.ErrorAs(t, a.err, &ce)
				require.Equal(t, a.opts.CommandID, ce.CommandID)
			case a.kind == "fails":
				require.ErrorContains(t, a.err, "event_id", "not the injected fault: %v", a.err)
				require.NotErrorIs(t, a.err, persistence.ErrVersionConflict)
				require.NotErrorIs(t, a.err, persistence.ErrUnknownOutcome)
				failed++
			case a.kind == "invalid":
				require.ErrorIs(t, a.err, persistence.ErrInvalidEvent)
			default:
				require.NoError(t, a.err, "a %s Append failed", a.kind)
			}
		}
	}
	// A refused command names where the first one is stored.
	for _, rs := range results {
		for _, a := range rs {
			var ce *persistence.CommandConflictError
			if errors.As(a.err, &ce) {
				require.Equal(t, commands[ce.CommandID], ce.Sequences)
			}
		}
	}
	// Every event of the log but the first ones belongs to an Append that
	// was told it succeeded: nothing of a failed one is stored.
	require.Equal(t, len(log)-nstreams, len(owner), "the log holds events that no Append returned")
	for _, r := range log[nstreams:] {
		require.Contains(t, owner, r.EventID, "event %d is stored but no Append returned it", r.Sequence)
		if e, ok := r.Event.(orchestration.ProjectRenamed); ok {
			require.False(t, strings.HasPrefix(e.Name, "fail") || strings.HasPrefix(e.Name, "ok-"), "an event of a failed Append is stored: %+v", e)
		}
	}
	require.EqualValues(t, writers*each/10, failed)
	require.GreaterOrEqual(t, faults.Load(), int64(failed))
	require.Positive(t, repeats, "no command was repeated")
	require.Positive(t, conflicts, "no expected version conflicted")
	t.Logf("%d events, %d conflicts, %d repeats answered from the first, %d failed in the database, %d groups of more than one",
		len(log), conflicts, repeats, failed, multi.Load())

	rep, err := s.Verify(su.ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%+v", rep.Problems)
}
