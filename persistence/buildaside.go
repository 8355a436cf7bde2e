package persistence

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/peonhq/peon/internal/projector"
)

// shadowChunk is how many events buildAside applies
// per read transaction: a long one would keep SQLite from checkpointing
// the WAL, or PostgreSQL from vacuuming.
const shadowChunk = 20 * pageSize

// swapIn replaces, inside tx, the stored projection tables (their
// qualified names in stored) with the temporary tables of the same names
// on tx's connection, and moves every projector to last.
func (s *Store) swapIn(ctx context.Context, tx querier, stored map[string]string, last int64) error {
	for _, t := range projector.Tables {
		cols, err := columns(ctx, tx, t.Name)
		if err != nil {
			return err
		}
		for i, c := range cols {
			cols[i] = `"` + c + `"`
		}
		list := strings.Join(cols, ", ")
		order := ""
		if t.Name == "checkpoints" {
			// The surrogate id comes from the stored table's counter,
			// in the order the rows were made.
			order = " ORDER BY id"
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+stored[t.Name]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+stored[t.Name]+" ("+list+") SELECT "+list+" FROM "+t.Name+order); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range projector.Names {
		if _, err := tx.ExecContext(ctx, s.d.Bind(
			"INSERT INTO "+stored["projection_state"]+" (projector, last_sequence, updated_at) VALUES (?, ?, ?) ON CONFLICT (projector) DO NOTHING"),
			name, last, now); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.Bind("UPDATE "+stored["projection_state"]+" SET last_sequence = ?, updated_at = ?"), last, now); err != nil {
		return err
	}
	return nil
}

// buildAside is the first phase of rebuildShadow and Verify: on a
// connection of its own it creates temporary tables of the projection
// tables and projection_state, applies to them the log up to the head seen
// now, in read transactions, and returns the connection, the qualified
// names of the stored tables, that head and how many events it applied; it
// tallies what it skipped in res, when not nil. The caller must discard
// the connection.
//
// The connection's temporary tables hide the stored ones: a statement on
// it that names a projection table unqualified reaches the temporary table
// (SQLite and PostgreSQL look in the session's temp schema first). An
// append on that connection would update the temporary table only, so the
// connection never goes back to the pool: it is discarded whatever happens.
func (s *Store) buildAside(ctx context.Context, progress func(done, total int64), res *RebuildResult) (*sql.Conn, map[string]string, int64, int64, error) {
	if s.closed.Load() {
		return nil, nil, 0, 0, ErrClosed
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	stored, head, done, err := s.buildOn(ctx, conn, progress, res)
	if err != nil {
		discard(conn)
		return nil, nil, 0, done, err
	}
	return conn, stored, head, done, nil
}

// buildOn is buildAside on conn, which the caller discards.
func (s *Store) buildOn(ctx context.Context, conn *sql.Conn, progress func(done, total int64), res *RebuildResult) (stored map[string]string, head, done int64, err error) {
	// A read-only store's connections refuse every write; this one writes
	// only its temporary tables, and is discarded.
	if s.opts.ReadOnly {
		if err = s.d.AllowTempWrites(ctx, conn); err != nil {
			return nil, 0, 0, err
		}
	}
	// projection_state gets a temporary table too: Applier.Advance writes
	// it, and a write to the stored one would take the write lock.
	names := []string{"projection_state"}
	for _, t := range projector.Tables {
		names = append(names, t.Name)
	}
	if stored, err = s.d.ShadowTables(ctx, conn, names); err != nil {
		return nil, 0, 0, err
	}

	// The log up to the head seen now, in read transactions. The log below
	// the head does not change, so each chunk may read its own snapshot.
	if head, err = s.d.LastSequence(ctx, conn); err != nil {
		return nil, 0, 0, err
	}
	if res != nil && res.known == nil {
		if res.known, err = loadGaps(ctx, conn); err != nil {
			return nil, 0, 0, err
		}
	}
	// The events to apply: up to the head, less those compacted away.
	total := head
	if res != nil {
		total -= res.known.removedFrom("")
	}
	if progress != nil {
		progress(0, total)
	}
	for from := int64(1); from <= head; from += shadowChunk {
		to := min(from+shadowChunk-1, head)
		// DEFERRED on SQLite: no write lock. A failure leaves the
		// transaction open: discarding the connection ends it.
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return nil, 0, done, err
		}
		var report func(n, total int64)
		if progress != nil {
			report = func(n, _ int64) { progress(done+n, total) }
		}
		n, err := s.applyFrom(ctx, conn, from, to, total, report, res)
		done += n
		if err != nil {
			return nil, 0, done, err
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return nil, 0, done, err
		}
	}
	return stored, head, done, nil
}
