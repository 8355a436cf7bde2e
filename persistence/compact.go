package persistence

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/orchestration"
)

// CompactOpts are the optional inputs of Compact. A nil *CompactOpts is
// the same as the zero value: messages completed more than
// DefaultCompactAfter (24 h) ago.
type CompactOpts struct {
	// Until, when positive, folds only messages whose message.completed
	// has a sequence at or before it.
	Until int64
	// OlderThan, when positive, folds only messages whose
	// message.completed has an at more than OlderThan ago. When Until and
	// OlderThan are both zero, OlderThan is DefaultCompactAfter; when both
	// are set, a message must meet both.
	OlderThan time.Duration
	// Vacuum gives the space back to the file system at the end: on SQLite
	// a full VACUUM, which also turns a file created before incremental
	// vacuum on to it (without Vacuum, such a file keeps its free pages for
	// later appends); on PostgreSQL a VACUUM of the log, instead of
	// leaving the dead rows to autovacuum.
	Vacuum bool
	// Progress, when set, is called after each page of the log scanned,
	// with the sequence reached and the last one Compact looks at.
	Progress Progress

	// leaveSpace leaves the space to the caller (Maintain), which gives
	// it back once after its prune and compaction.
	leaveSpace bool
}

// CompactReport is what a Compact did.
type CompactReport struct {
	// Until is the last sequence Compact looked at, and Before the time
	// before which a message had to be completed (zero when only Until
	// counted).
	Until  int64
	Before time.Time
	// Messages are the messages whose deltas were folded, Events the
	// events removed, Bytes the payload bytes the log gave up.
	Messages, Events, Bytes int64
	// Compactions are the write transactions that did it, each a bounded
	// batch of messages.
	Compactions int64
	// Reclaimed is how much the database shrank, in bytes: on SQLite the
	// pages given back to the file system, on PostgreSQL what
	// pg_database_size lost (0 until a VACUUM returns the pages).
	Reclaimed int64
	Elapsed   time.Duration
}

// compactBatch bounds a compaction's write transaction: this many
// messages, or compactBatchEvents events removed, whichever comes first,
// so that appends wait for one short transaction at most.
const (
	compactBatch       = 16
	compactBatchEvents = 250
)

// Compact folds the streamed replies of messages completed before a
// horizon: for each such message, the message.delta events between its
// message.added and its message.completed become one message.delta
// carrying their text in order. The first delta stays, with its
// sequence, stream version, event id and at, and its payload holds the
// whole text; the others are removed, and a row of the compactions table
// records where (see docs/RETENTION.md). Projections do not change, nor
// does a stream's current version (its last event is never a folded
// delta), and an Append repeating a command whose events were folded is
// still recognised as stored.
//
// It scans the log in pages and folds in short write transactions of a
// bounded batch of messages, so appends of this and other processes go
// on meanwhile; a crash leaves every batch folded or not. It refuses a
// read-only store.
func (s *Store) Compact(ctx context.Context, opts *CompactOpts) (*CompactReport, error) {
	if err := s.writable(); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if opts == nil {
		opts = &CompactOpts{}
	}
	if opts.Until < 0 || opts.OlderThan < 0 {
		return nil, fmt.Errorf("compact: Until %d and OlderThan %s; want 0 or more", opts.Until, opts.OlderThan)
	}
	start := time.Now()
	rep := &CompactReport{}
	var err error
	ctx, done := s.tel.op(ctx, "compact", "compaction")
	defer func() { done(err, "messages", rep.Messages, "events", rep.Events, "bytes", rep.Bytes) }()
	err = s.compact(ctx, opts, rep)
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, fmt.Errorf("compact: %w", withContext(ctx, err))
	}
	return rep, nil
}

func (s *Store) compact(ctx context.Context, opts *CompactOpts, rep *CompactReport) error {
	sd, _ := s.d.(statsDialect)
	before := time.Now().UTC().Add(-cmp.Or(opts.OlderThan, DefaultCompactAfter))
	if opts.Until > 0 && opts.OlderThan == 0 {
		before = time.Time{} // by sequence only (see foldArgs)
	}
	rep.Before = before
	head, err := s.d.LastSequence(ctx, s.db)
	if err != nil {
		return err
	}
	rep.Until = head
	if opts.Until > 0 {
		rep.Until = min(head, opts.Until)
	}
	var sizeBefore int64
	if !opts.leaveSpace {
		if sizeBefore, err = s.databaseBytes(ctx, sd); err != nil {
			return err
		}
	}
	plan := newFoldPlanner()
	var batch []messageFold
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.foldBatch(ctx, batch, rep); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	events := 0
	q := s.d.Bind(foldQuery(s.d, sd) + " AND sequence > ? AND sequence <= ? ORDER BY sequence LIMIT ?")
	for from := int64(0); ; {
		rows, err := s.db.QueryContext(ctx, q, foldArgs(before, rep.Until, from, rep.Until, pageSize)...)
		if err != nil {
			return err
		}
		n, full := 0, false
		for rows.Next() {
			var r foldRow
			if err := r.scan(rows); err != nil {
				rows.Close()
				return err
			}
			n++
			from = r.Sequence
			for _, f := range plan.see(r) {
				batch = append(batch, f)
				events += len(f.Deltas) - 1
			}
			// A full batch is folded before the scan goes on (after
			// the rows are closed: a private in-memory store has one
			// connection).
			if full = len(batch) >= compactBatch || events >= compactBatchEvents; full {
				break
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		if full {
			if err := flush(); err != nil {
				return err
			}
			events = 0
		}
		if opts.Progress != nil {
			opts.Progress(from, rep.Until)
		}
		if !full && n < pageSize {
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if opts.leaveSpace {
		return nil
	}
	rep.Reclaimed, err = s.reclaimSpace(ctx, sd, sizeBefore, rep.Events > 0, opts.Vacuum)
	return err
}

// reclaimSpace gives the space of removed rows back to the file system
// (the engine's Reclaim: on SQLite the incremental vacuum, or a full
// VACUUM when vacuum is set) when anything was removed or vacuum asks for
// it, in a span peon.reclaim, and returns how much the database shrank
// since it measured before bytes (databaseBytes). Compact, Prune and
// Maintain end with it.
func (s *Store) reclaimSpace(ctx context.Context, sd statsDialect, before int64, removed, vacuum bool) (reclaimed int64, err error) {
	if sd != nil && (removed || vacuum) {
		var end endFunc
		ctx, end = s.tel.start(ctx, "peon.reclaim", attribute.Bool("peon.reclaim.full", vacuum))
		defer func() { end(err, attribute.Int64("peon.reclaim.bytes", reclaimed)) }()
		if err := sd.Reclaim(ctx, s.db, vacuum); err != nil {
			return 0, fmt.Errorf("give the space back: %w", err)
		}
	}
	after, err := s.databaseBytes(ctx, sd)
	if err != nil {
		return 0, fmt.Errorf("read the database's size: %w", err)
	}
	return max(0, before-after), nil
}

// databaseBytes is the database's size as Stats reads it.
func (s *Store) databaseBytes(ctx context.Context, sd statsDialect) (int64, error) {
	if sd == nil {
		return 0, nil
	}
	db, err := sd.DatabaseStats(ctx, s.db, s.target.DSN)
	return db.Bytes, err
}

// foldBatch folds the messages of batch in one write transaction,
// splitting it when a message's events are too many for one statement.
func (s *Store) foldBatch(ctx context.Context, batch []messageFold, rep *CompactReport) error {
	var msgs, evs, bytes int64
	err := s.writeTx(ctx, func(tx *ent.Tx) error {
		msgs, evs, bytes = 0, 0, 0
		now := time.Now().UTC().Truncate(time.Microsecond)
		for _, f := range batch {
			removed, saved, err := s.fold(ctx, tx, f, now)
			if err != nil {
				return fmt.Errorf("fold the deltas of message %s of %s: %w", f.MessageID, f.Stream, err)
			}
			if removed > 0 {
				msgs++
				evs += removed
				bytes += saved
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.Messages += msgs
	rep.Events += evs
	rep.Bytes += bytes
	rep.Compactions++
	return nil
}

// fold folds one message's deltas inside tx and returns the events
// removed and the payload bytes saved. A message whose deltas are no
// longer all there (another compaction folded them) is left alone.
func (s *Store) fold(ctx context.Context, tx querier, f messageFold, now time.Time) (removed, saved int64, err error) {
	seqs := make([]any, len(f.Deltas))
	for i, d := range f.Deltas {
		seqs[i] = d.Sequence
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(seqs)), ", ")
	rows, err := tx.QueryContext(ctx, s.d.Bind("SELECT sequence, stream_version, event_type, payload, command_id FROM events WHERE sequence IN ("+in+") ORDER BY sequence"), seqs...)
	if err != nil {
		return 0, 0, err
	}
	var (
		text     strings.Builder
		first    orchestration.MessageDelta
		n        int
		old      int64
		commands = map[string]bool{}
	)
	for rows.Next() {
		var (
			seq, version int64
			typ          string
			payload      []byte
			cmd          sql.NullString
		)
		if err := rows.Scan(&seq, &version, &typ, &payload, &cmd); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if seq != f.Deltas[n].Sequence || version != f.Deltas[n].Version || typ != orchestration.TypeMessageDelta {
			rows.Close()
			return 0, 0, nil // not what was planned
		}
		e, err := orchestration.Decode(typ, payload)
		if err != nil {
			rows.Close()
			return 0, 0, nil // Verify reports it; leave it as it is
		}
		d := e.(orchestration.MessageDelta)
		if n == 0 {
			first = d
		}
		text.WriteString(d.Delta)
		old += int64(len(payload))
		if cmd.Valid {
			commands[cmd.String] = true
		}
		n++
	}
	err = rows.Err()
	rows.Close()
	if err != nil || n != len(f.Deltas) {
		return 0, 0, err
	}
	first.Delta = text.String()
	_, payload, err := admit(first)
	if err != nil {
		return 0, 0, nil // the text is too large for one event: leave the deltas
	}
	// The commands first, while their events are all there.
	for cmd := range commands {
		if _, err := tx.ExecContext(ctx, s.d.Bind(`INSERT INTO compacted_commands (command_id, events, compacted_at)
			SELECT command_id, COUNT(*), ? FROM events WHERE command_id = ? GROUP BY command_id
			ON CONFLICT (command_id) DO NOTHING`), now, cmd); err != nil {
			return 0, 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.Bind("UPDATE events SET payload = ? WHERE sequence = ?"), string(payload), f.Deltas[0].Sequence); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, s.d.Bind("DELETE FROM events WHERE sequence IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(seqs)-1), ", ")+")"), seqs[1:]...); err != nil {
		return 0, 0, err
	}
	last := f.Deltas[len(f.Deltas)-1]
	removed = int64(len(f.Deltas) - 1)
	saved = old - int64(len(payload))
	// A message folded before in several events (see maxFoldDeltas) folds
	// again into its first: its record grows to cover the new range.
	if _, err := tx.ExecContext(ctx, s.d.Bind(`INSERT INTO compactions (first_sequence, last_sequence, stream_id, first_version, last_version, events, bytes, compacted_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (first_sequence) DO UPDATE SET last_sequence = excluded.last_sequence, last_version = excluded.last_version,
			events = compactions.events + excluded.events, bytes = compactions.bytes + excluded.bytes, compacted_at = excluded.compacted_at`),
		f.Deltas[0].Sequence, last.Sequence, f.Stream, f.Deltas[0].Version, last.Version, removed, saved, now); err != nil {
		return 0, 0, err
	}
	return removed, saved, nil
}
