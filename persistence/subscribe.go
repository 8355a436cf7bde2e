package persistence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// pollInterval is how often a SQLite store checks whether another process
// appended, while someone is subscribed; fallbackPoll is the safety net of
// PostgreSQL's LISTEN/NOTIFY. Subscribe's doc states both.
const (
	pollInterval = 50 * time.Millisecond
	fallbackPoll = 2 * time.Second
)

// Subscribe yields every event after sequence `after`, in order, and then
// each new one as it commits, until ctx ends (it then returns without an
// error). It reads from the log, so a slow subscriber is never dropped and
// never skips: it catches up. Appends of this process wake it at once.
// Appends of other processes wake it within 50ms on SQLite, which checks
// PRAGMA data_version that often while someone is subscribed, and at once
// on PostgreSQL, through NOTIFY, with a poll every 2s as the safety net
// should a notification be lost. A row that cannot be decoded is yielded
// with a *DecodeError and the subscription goes on; a database error ends
// it with that error (SubscribeWith can resume instead), and closing the store ends it with ErrClosed.
func (s *Store) Subscribe(ctx context.Context, after int64) iter.Seq2[Recorded, error] {
	return s.SubscribeWith(ctx, after, nil)
}

// SubscribeOpts are the optional inputs of SubscribeWith. A nil
// *SubscribeOpts is the same as the zero value.
type SubscribeOpts struct {
	// Resume keeps the subscription going through database errors (a
	// connection the server terminated, a server restart, a failover):
	// when a read fails, it yields a *RetryError, waits, and reads again
	// from the event after the last one it yielded, so that every event
	// is still yielded exactly once and in order. The loop may go on past
	// a *RetryError or break. False (the default): a database error ends
	// the subscription with that error, as Subscribe does.
	Resume bool
	// RetryMin is the first wait after a failed read (default 100 ms); it
	// doubles with each failure in a row up to RetryMax (default 5 s), and
	// starts again at RetryMin after a read succeeds.
	RetryMin, RetryMax time.Duration
}

// The default waits of a resuming subscription.
const (
	subscribeRetryMin = 100 * time.Millisecond
	subscribeRetryMax = 5 * time.Second
)

// RetryError is yielded by a subscription with SubscribeOpts.Resume for a
// read that failed: Err says why, Attempt counts the failures in a row
// (from 1), and the subscription reads again after Delay.
type RetryError struct {
	Err     error
	Attempt int
	Delay   time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v; retrying in %v (attempt %d)", e.Err, e.Delay, e.Attempt)
}

// Unwrap returns the error the read failed with.
func (e *RetryError) Unwrap() error { return e.Err }

// SubscribeWith is Subscribe with options; see SubscribeOpts.
func (s *Store) SubscribeWith(ctx context.Context, after int64, opts *SubscribeOpts) iter.Seq2[Recorded, error] {
	if opts == nil {
		opts = &SubscribeOpts{}
	}
	retryMin := cmp.Or(opts.RetryMin, subscribeRetryMin)
	retryMax := max(cmp.Or(opts.RetryMax, subscribeRetryMax), retryMin)
	return func(yield func(Recorded, error) bool) {
		s.subscribers.Add(1)
		defer s.subscribers.Add(-1)
		pos, unsubscribed := s.tel.subscribed(after)
		defer unsubscribed()
		poll := time.NewTimer(fallbackPoll)
		defer poll.Stop()
		next := after + 1
		failures := 0
		catchCtx, caughtUp := s.tel.start(ctx, "peon.subscribe.catch_up", attribute.Int64("peon.subscribe.after", after))
		defer func() { caughtUp(nil, attribute.Int64("peon.subscribe.next", next)) }()
		for {
			// Take the wake-up channel before reading: an append that
			// commits after the read below began fires it, so none goes
			// unnoticed.
			wake := s.grew.wait()
			var failed error
			for rec, err := range s.ReplayFrom(catchCtx, next) {
				var de *DecodeError
				if err != nil && !errors.As(err, &de) { // the read failed
					failed = err
					break
				}
				next = rec.Sequence + 1
				if !yield(rec, err) {
					return
				}
				if pos != nil {
					pos.Store(rec.Sequence)
				}
			}
			caughtUp(failed, attribute.Int64("peon.subscribe.next", next))
			catchCtx, caughtUp = ctx, endNothing
			var delay time.Duration
			switch {
			case failed != nil && ctx.Err() != nil:
				return
			case failed != nil && s.closed.Load():
				yield(Recorded{}, ErrClosed)
				return
			case failed != nil && !opts.Resume:
				yield(Recorded{}, failed)
				return
			case failed != nil:
				failures++
				delay = retryMax
				if failures < 32 {
					delay = min(retryMin<<(failures-1), retryMax)
				}
				s.tel.log.Warn("peon: subscription read failed; retrying", "err", failed, "attempt", failures, "retry_in", delay)
				if !yield(Recorded{}, &RetryError{Err: failed, Attempt: failures, Delay: delay}) {
					return
				}
				wake = nil // wait out the delay, whatever commits meanwhile
			default:
				failures = 0
				delay = fallbackPoll
			}
			poll.Reset(delay)
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-poll.C:
			}
			if s.closed.Load() && ctx.Err() == nil {
				yield(Recorded{}, ErrClosed)
				return
			}
		}
	}
}

// watch starts the background work that notices appends of other
// processes and fires s.grew: PRAGMA data_version on a SQLite file,
// LISTEN on PostgreSQL.
func (s *Store) watch(ctx context.Context) error {
	switch {
	case s.target.Memory:
		return nil // no other process can reach it
	case s.d.name() == "sqlite":
		s.wg.Go(func() { s.watchDataVersion(ctx) })
	case s.d.name() == "postgres":
		s.wg.Go(func() { s.listen(ctx) })
	}
	return nil
}

// watchDataVersion polls PRAGMA data_version, which changes when another
// connection commits, while anyone is subscribed. The query reads no table.
func (s *Store) watchDataVersion(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last int64 = -1
	failing := s.tel.failures("SQLite data_version watcher")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.subscribers.Load() == 0 {
			last = -1
			continue
		}
		conn, err := s.db.Conn(ctx)
		if err != nil {
			failing(ctx, err)
			continue
		}
		// data_version is per connection: keep this one while subscribed.
		for s.subscribers.Load() > 0 && ctx.Err() == nil {
			v, err := queryInt64(ctx, conn, "PRAGMA data_version")
			failing(ctx, err)
			if err != nil {
				break
			}
			// A change fires; so does the first reading, which stands for
			// whatever committed before it, unseen by a subscriber that
			// read the log before this watcher started.
			if v != last {
				s.grew.fire()
			}
			last = v
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		last = -1
		conn.Close()
	}
}
