package persistence

import (
	"context"
	"iter"
	"time"
)

// pollInterval is how often a SQLite store checks whether another process
// appended, while someone is subscribed; fallbackPoll is the safety net of
// PostgreSQL's LISTEN/NOTIFY.
const (
	pollInterval = 50 * time.Millisecond
	fallbackPoll = 2 * time.Second
)

// Subscribe yields every event after sequence `after`, in order, and then
// each new one as it commits, until ctx ends (it then returns without an
// error). It reads from the log, so a slow subscriber is never dropped and
// never skips: it catches up. Appends of this process wake it at once;
// appends of other processes within pollInterval (SQLite) or on
// PostgreSQL's NOTIFY.
func (s *Store) Subscribe(ctx context.Context, after int64) iter.Seq2[Recorded, error] {
	return func(yield func(Recorded, error) bool) {
		s.subscribers.Add(1)
		defer s.subscribers.Add(-1)
		next := after + 1
		for {
			wake := s.grew.wait() // before reading: no append goes unnoticed
			for rec, err := range s.ReplayFrom(ctx, next) {
				if err != nil && rec.Sequence == 0 {
					if ctx.Err() != nil {
						return
					}
					yield(Recorded{}, err)
					return
				}
				next = rec.Sequence + 1
				if !yield(rec, err) {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
				if s.closed.Load() {
					yield(Recorded{}, ErrClosed)
					return
				}
			case <-time.After(fallbackPoll):
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
			if last >= 0 && v != last {
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
