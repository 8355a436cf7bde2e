package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The listener's reconnect delays: it starts at listenRetryMin after a
// failure and doubles up to listenRetryMax.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listen fires s.grew on PostgreSQL notifications of other processes'
// appends (postgresDialect.notify sends one in every append transaction).
// It holds one dedicated connection, outside the pool, LISTENing on the
// notifyChannel of its events table; when that connection fails it
// reconnects with backoff, and it returns when ctx ends. Notifications sent while it is not
// listening are lost, so it fires s.grew each time it starts listening:
// subscribers re-read the log and miss nothing (see Subscribe).
func (s *Store) listen(ctx context.Context) {
	delay := listenRetryMin
	for attempt := 1; ; attempt++ {
		listening, err := s.listenOnce(ctx, attempt > 1)
		if ctx.Err() != nil {
			return
		}
		if listening {
			delay, attempt = listenRetryMin, 1 // it worked for a while: retry soon
		}
		s.tel.log.Warn("peon: PostgreSQL listener failed; reconnecting", "err", err, "attempt", attempt, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, listenRetryMax)
	}
}

// listenOnce connects, listens and fires s.grew on each notification
// until the connection fails or ctx ends. It reports whether it got as far
// as LISTEN, and the error that ended it; with again, it logs that it
// listens again. Its errors only end the attempt: the fallback poll of
// Subscribe covers the time until the next one succeeds.
func (s *Store) listenOnce(ctx context.Context, again bool) (listening bool, err error) {
	conn, err := pgx.Connect(ctx, s.target.DSN)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, "SELECT "+notifyChannel).Scan(&channel); err != nil {
		return false, fmt.Errorf("read the notification channel: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	if again {
		s.tel.log.Info("peon: PostgreSQL listener reconnected", "channel", channel)
	}
	s.grew.fire() // whatever committed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, fmt.Errorf("wait for notifications: %w", err)
		}
		s.grew.fire()
	}
}
