package sqlite

import (
	"context"
	"time"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

// Watch polls PRAGMA data_version, which changes when another connection
// commits, while anyone is subscribed. The query reads no table. A
// private in-memory database needs no watch: no other process can reach
// it.
func (e Engine) Watch(ctx context.Context, w engine.Watch) {
	if e.Memory {
		return
	}
	t := time.NewTicker(w.PollInterval)
	defer t.Stop()
	var last int64 = -1
	failing := w.Failures("SQLite data_version watcher")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !w.Subscribed() {
			last = -1
			continue
		}
		conn, err := w.DB.Conn(ctx)
		if err != nil {
			failing(ctx, err)
			continue
		}
		// data_version is per connection: keep this one while subscribed.
		for w.Subscribed() && ctx.Err() == nil {
			v, err := sqlx.QueryInt64(ctx, conn, "PRAGMA data_version")
			failing(ctx, err)
			if err != nil {
				break
			}
			// A change fires; so does the first reading, which stands for
			// whatever committed before it, unseen by a subscriber that
			// read the log before this watcher started.
			if v != last {
				w.Grew()
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
