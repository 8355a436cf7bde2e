package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/peonhq/peon/internal/engine"
)

// The listener's reconnect delays: it starts at listenRetryMin after a
// failure and doubles up to listenRetryMax.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// Watch calls w.Grew on PostgreSQL notifications of other processes'
// appends (Notify sends one in every append transaction).
// It holds one dedicated connection, outside the pool, LISTENing on the
// notifyChannel of its events table; when that connection fails it
// reconnects with backoff, and it returns when ctx ends. Notifications
// sent while it is not listening are lost, so it calls w.Grew each time it
// starts listening: subscribers re-read the log and miss nothing.
func (Engine) Watch(ctx context.Context, w engine.Watch) {
	delay := listenRetryMin
	for {
		listening := listenOnce(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if listening {
			delay = listenRetryMin // it worked for a while: retry soon
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, listenRetryMax)
	}
}

// listenOnce connects, listens and calls w.Grew on each notification
// until the connection fails or ctx ends. It reports whether it got as far
// as LISTEN. Its errors only end the attempt: the store's fallback poll
// covers the time until the next one succeeds.
func listenOnce(ctx context.Context, w engine.Watch) (listening bool) {
	conn, err := pgx.Connect(ctx, w.DSN)
	if err != nil {
		return false
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, "SELECT "+notifyChannel).Scan(&channel); err != nil {
		return false
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false
	}
	w.Grew() // whatever committed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		w.Grew()
	}
}
