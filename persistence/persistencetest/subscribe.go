package persistencetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// prompt is how soon a subscriber must see an append of another store. It
// is well below the fallback poll of two seconds, so a test that waits for
// an event right after the subscriber went idle fails when the wake-up was
// lost and only the poll found the event.
const prompt = time.Second

// item is one value a subscription yielded.
type item struct {
	rec persistence.Recorded
	err error
}

// follower runs a subscription in a goroutine and hands over what it
// yields.
type follower struct {
	items  chan item
	cancel context.CancelFunc
}

// follow subscribes to store after `after` until the test ends or cancel
// is called; the channel is closed when the subscription returns.
func follow(t *testing.T, store *persistence.Store, after int64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	f := &follower{items: make(chan item, 100_000), cancel: cancel}
	go func() {
		defer close(f.items)
		for rec, err := range store.Subscribe(ctx, after) {
			f.items <- item{rec, err}
		}
	}()
	return f
}

// next returns the next event, failing on an error or when none comes
// within wait.
func (f *follower) next(t *testing.T, wait time.Duration) persistence.Recorded {
	t.Helper()
	select {
	case it, ok := <-f.items:
		require.True(t, ok, "the subscription ended")
		require.NoError(t, it.err)
		return it.rec
	case <-time.After(wait):
		require.FailNow(t, "no event", "within %v", wait)
		return persistence.Recorded{}
	}
}

// nextSeqs returns the sequences of the next n events.
func (f *follower) nextSeqs(t *testing.T, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		out[i] = f.next(t, 10*time.Second).Sequence
	}
	return out
}

// ends waits for the subscription to return and fails if it yields
// anything more than want (nil: nothing) on the way.
func (f *follower) ends(t *testing.T, want error) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	var got []error
	for {
		select {
		case it, ok := <-f.items:
			if !ok {
				if want == nil {
					require.Empty(t, got)
				} else {
					require.Len(t, got, 1)
					require.ErrorIs(t, got[0], want)
				}
				return
			}
			require.Error(t, it.err, "an event after the end: %d", it.rec.Sequence)
			got = append(got, it.err)
		case <-timeout:
			require.FailNow(t, "the subscription did not end")
		}
	}
}

// quiet fails if the subscription yields anything within d.
func (f *follower) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case it, ok := <-f.items:
		require.FailNow(t, "unexpected", "item %d (%v), open %v", it.rec.Sequence, it.err, ok)
	case <-time.After(d):
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for q := from; q <= to; q++ {
		out = append(out, q)
	}
	return out
}

func runSubscribe(t *testing.T, h Harness) {
	t.Run("CatchUpThenLive", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:3]...)
		require.NoError(t, err)
		f := follow(t, s.store, 0)
		first := f.next(t, 10*time.Second)
		require.Equal(t, int64(1), first.Sequence)
		require.Equal(t, Catalogue()[0], first.Event)
		require.Equal(t, []int64{2, 3}, f.nextSeqs(t, 2))
		f.quiet(t, 50*time.Millisecond)
		for range 3 {
			_, err = s.store.Append(s.ctx, nil, Catalogue()[3:5]...)
			require.NoError(t, err)
		}
		require.Equal(t, seqRange(4, 9), f.nextSeqs(t, 6))
		f.cancel()
		f.ends(t, nil)
	})

	t.Run("StartsAfter", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:5]...)
		require.NoError(t, err)
		f := follow(t, s.store, 3)
		require.Equal(t, []int64{4, 5}, f.nextSeqs(t, 2))
		_, err = s.store.Append(s.ctx, nil, Catalogue()[5])
		require.NoError(t, err)
		require.Equal(t, []int64{6}, f.nextSeqs(t, 1))
		// After the head: only what comes next.
		g := follow(t, s.store, 6)
		g.quiet(t, 50*time.Millisecond)
		_, err = s.store.Append(s.ctx, nil, Catalogue()[6])
		require.NoError(t, err)
		require.Equal(t, []int64{7}, g.nextSeqs(t, 1))
		require.Equal(t, []int64{7}, f.nextSeqs(t, 1))
	})

	t.Run("SlowSubscriberSeesEverythingOnce", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		var (
			seen []int64
			errs []error
			last atomic.Int64
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			for rec, err := range s.store.Subscribe(ctx, 0) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				seen = append(seen, rec.Sequence)
				last.Store(rec.Sequence)
				time.Sleep(2 * time.Millisecond) // slower than the writer
			}
		}()
		var total int64
		for b := range 40 {
			n := 1 + b%5
			evs := make([]orchestration.Event, n)
			for i := range evs {
				evs[i] = orchestration.ThreadRenamed{ThreadID: "t", Title: fmt.Sprint(b, i), At: T0}
			}
			_, err := s.store.Append(s.ctx, nil, evs...)
			require.NoError(t, err)
			total += int64(n)
		}
		require.Eventually(t, func() bool { return last.Load() == total }, 30*time.Second, 5*time.Millisecond)
		cancel()
		<-done
		require.Empty(t, errs)
		require.Equal(t, seqRange(1, total), seen)
	})

	t.Run("EndsWithoutErrorOnCancel", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		// Waiting for events.
		f := follow(t, s.store, 0)
		f.quiet(t, 20*time.Millisecond)
		f.cancel()
		f.ends(t, nil)
		// In the middle of catching up.
		_, err := s.store.Append(s.ctx, nil, Deltas("t", 3000)...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		n := 0
		for _, err := range s.store.Subscribe(ctx, 0) {
			require.NoError(t, err)
			n++
			if n == 10 {
				cancel()
			}
		}
		require.Less(t, n, 3002)
		// Already cancelled.
		for _, err := range s.store.Subscribe(ctx, 0) {
			require.NoError(t, err)
		}
	})

	t.Run("UndecodableRowsAreReportedAndSkipped", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:3]...)
		require.NoError(t, err)
		_, err = s.store.Client().ExecContext(s.ctx, "UPDATE events SET event_type = 'project.exploded' WHERE sequence = 2")
		require.NoError(t, err)
		f := follow(t, s.store, 0)
		require.Equal(t, int64(1), f.next(t, 10*time.Second).Sequence)
		it := <-f.items
		var de *persistence.DecodeError
		require.ErrorAs(t, it.err, &de)
		require.Equal(t, int64(2), de.Sequence)
		require.Equal(t, int64(2), it.rec.Sequence)
		require.Nil(t, it.rec.Event)
		require.Equal(t, int64(3), f.next(t, 10*time.Second).Sequence)
		_, err = s.store.Append(s.ctx, nil, Catalogue()[3])
		require.NoError(t, err)
		require.Equal(t, int64(4), f.next(t, 10*time.Second).Sequence)
	})

	t.Run("CloseEndsWithErrClosed", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[0])
		require.NoError(t, err)
		f := follow(t, s.store, 0)
		require.Equal(t, int64(1), f.next(t, 10*time.Second).Sequence)
		require.NoError(t, s.store.Close())
		f.ends(t, persistence.ErrClosed)
	})

	t.Run("AnotherStoreWakesItPromptly", func(t *testing.T) {
		if !h.Durable {
			t.Skip("no other store can open this database")
		}
		t.Parallel()
		s := h.setup(t)
		other := h.open(t, s.dsn)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[0])
		require.NoError(t, err)
		f := follow(t, s.store, 0)
		require.Equal(t, int64(1), f.next(t, 10*time.Second).Sequence)
		for i := 1; i <= 5; i++ {
			// The subscriber has just gone idle: without a wake-up it
			// would only find the event at its fallback poll.
			start := time.Now()
			recs, err := other.Append(s.ctx, nil, Catalogue()[i])
			require.NoError(t, err)
			rec := f.next(t, 10*time.Second)
			require.Equal(t, recs[0].Sequence, rec.Sequence)
			require.Less(t, time.Since(start), prompt, "append %d of the other store", i)
		}
	})

	t.Run("ConcurrentWritersAndSubscribers", func(t *testing.T) {
		t.Parallel()
		concurrentWritersAndSubscribers(t, h)
	})

	t.Run("RacingWritersOneWins", func(t *testing.T) {
		t.Parallel()
		racingWriters(t, h)
	})
}

// concurrentWritersAndSubscribers has 8 writers append batches of random
// size to overlapping streams, half of them with expected versions that
// they retry on conflict, while 3 subscribers follow the log from 0.
// Afterwards every subscriber has seen every committed event exactly once
// in sequence order, and every stream's versions are 1..n.
func concurrentWritersAndSubscribers(t *testing.T, h Harness) {
	const writers, batches, subscribers = 8, 20, 3
	s := h.setup(t)
	streams := []string{"a", "b", "c", "d"}

	type sub struct {
		ids  []string
		seqs []int64
		errs []error
		last atomic.Int64
	}
	subs := make([]*sub, subscribers)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var subWG sync.WaitGroup
	for i := range subs {
		sb := &sub{}
		subs[i] = sb
		subWG.Go(func() {
			for rec, err := range s.store.Subscribe(ctx, 0) {
				if err != nil {
					sb.errs = append(sb.errs, err)
					continue
				}
				sb.ids = append(sb.ids, rec.EventID)
				sb.seqs = append(sb.seqs, rec.Sequence)
				sb.last.Store(rec.Sequence)
			}
		})
	}

	committed := make([][]string, writers) // event ids per writer
	conflicts := make([]int, writers)
	werrs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			known := map[string]int64{} // this writer's view of stream versions
			for b := 0; b < batches; {
				thread := streams[rng.IntN(len(streams))]
				n := 1 + rng.IntN(8)
				evs := make([]orchestration.Event, n)
				for i := range evs {
					evs[i] = orchestration.ThreadRenamed{ThreadID: thread, Title: fmt.Sprint(w, b, i), At: T0}
				}
				var opts *persistence.AppendOpts
				if w%2 == 1 {
					opts = &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:" + thread: known[thread]}}
				}
				recs, err := s.store.Append(s.ctx, opts, evs...)
				var vc *persistence.VersionConflictError
				if errors.As(err, &vc) {
					conflicts[w]++
					known[thread] = vc.Actual
					continue // retry the batch at the version now known
				}
				if err != nil {
					werrs[w] = err
					return
				}
				for _, r := range recs {
					committed[w] = append(committed[w], r.EventID)
				}
				known[thread] = recs[n-1].StreamVersion
				b++
			}
		})
	}
	wg.Wait()
	for _, err := range werrs {
		require.NoError(t, err)
	}

	head, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	for i, sb := range subs {
		require.Eventually(t, func() bool { return sb.last.Load() == head }, 30*time.Second, 5*time.Millisecond,
			"subscriber %d stopped at %d of %d", i, sb.last.Load(), head)
	}
	cancel()
	subWG.Wait()

	log := collect(t, s.store.ReplayAll(s.ctx))
	require.Len(t, log, int(head))
	ids := make([]string, len(log))
	versions := map[string]int64{}
	for i, r := range log {
		require.Equal(t, int64(i+1), r.Sequence)
		versions[r.StreamID]++
		require.Equal(t, versions[r.StreamID], r.StreamVersion, "sequence %d", r.Sequence)
		ids[i] = r.EventID
	}
	want := map[string]bool{}
	for _, c := range committed {
		for _, id := range c {
			want[id] = true
		}
	}
	require.Len(t, want, len(log), "the log holds exactly the committed events")
	for _, id := range ids {
		require.True(t, want[id])
	}
	for i, sb := range subs {
		require.Empty(t, sb.errs, "subscriber %d", i)
		require.Equal(t, seqRange(1, head), sb.seqs, "subscriber %d", i)
		require.Equal(t, ids, sb.ids, "subscriber %d", i)
	}
	total := 0
	for _, c := range conflicts {
		total += c
	}
	t.Logf("%d events, %d conflicts retried", head, total)
}

// racingWriters has two writers append with the same expected version,
// round after round: exactly one wins, the loser gets a version conflict
// and leaves no trace, not even a burned sequence.
func racingWriters(t *testing.T, h Harness) {
	const rounds = 20
	s := h.setup(t)
	const stream = "thread:race"
	var version, head int64
	for round := range rounds {
		start := make(chan struct{})
		type result struct {
			recs []persistence.Recorded
			err  error
		}
		results := make([]result, 2)
		var wg sync.WaitGroup
		for w := range results {
			wg.Go(func() {
				<-start
				recs, err := s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{stream: version}},
					orchestration.ThreadRenamed{ThreadID: "race", Title: fmt.Sprint(round, w, 0), At: T0},
					orchestration.ThreadRenamed{ThreadID: "race", Title: fmt.Sprint(round, w, 1), At: T0})
				results[w] = result{recs, err}
			})
		}
		close(start)
		wg.Wait()
		var winner, loser result
		switch {
		case results[0].err == nil:
			winner, loser = results[0], results[1]
		default:
			winner, loser = results[1], results[0]
		}
		require.NoError(t, winner.err, "round %d: no writer won", round)
		require.ErrorIs(t, loser.err, persistence.ErrVersionConflict, "round %d: both won, or the loser failed otherwise", round)
		var vc *persistence.VersionConflictError
		require.ErrorAs(t, loser.err, &vc)
		require.Equal(t, persistence.VersionConflictError{Stream: stream, Expected: version, Actual: version + 2}, *vc)
		require.Nil(t, loser.recs)
		require.Equal(t, []int64{head + 1, head + 2}, sequences(winner.recs), "round %d: a sequence was burned", round)
		version += 2
		head += 2
	}
	got := collect(t, s.store.ReplayAll(s.ctx))
	require.Equal(t, seqRange(1, head), sequences(got))
	last, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	require.Equal(t, head, last)
	// The next append takes the next number.
	recs, err := s.store.Append(s.ctx, nil, orchestration.ThreadRenamed{ThreadID: "race", Title: "after", At: T0})
	require.NoError(t, err)
	require.Equal(t, head+1, recs[0].Sequence)
}
