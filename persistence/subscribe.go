package persistence

import (
	"context"
	"errors"
	"iter"
	"time"
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
// it with that error, and closing the store ends it with ErrClosed.
func (s *Store) Subscribe(ctx context.Context, after int64) iter.Seq2[Recorded, error] {
	return func(yield func(Recorded, error) bool) {
		s.subscribers.Add(1)
		defer s.subscribers.Add(-1)
		poll := time.NewTimer(fallbackPoll)
		defer poll.Stop()
		next := after + 1
		for {
			// Take the wake-up channel before reading: an append that
			// commits after the read below began fires it, so none goes
			// unnoticed.
			wake := s.grew.wait()
			for rec, err := range s.ReplayFrom(ctx, next) {
				var de *DecodeError
				if err != nil && !errors.As(err, &de) { // the read failed
					switch {
					case ctx.Err() != nil:
					case s.closed.Load():
						yield(Recorded{}, ErrClosed)
					default:
						yield(Recorded{}, err)
					}
					return
				}
				next = rec.Sequence + 1
				if !yield(rec, err) {
					return
				}
			}
			poll.Reset(fallbackPoll)
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
			continue
		}
		// data_version is per connection: keep this one while subscribed.
		for s.subscribers.Load() > 0 && ctx.Err() == nil {
			v, err := queryInt64(ctx, conn, "PRAGMA data_version")
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
