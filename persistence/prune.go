package persistence

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/orchestration"
)

// PruneOpts are the inputs of Prune: which streams to prune and where
// their events go first. A nil *PruneOpts prunes nothing.
type PruneOpts struct {
	// DeletedBefore prunes the streams of threads and projects deleted
	// before it: the at of their first thread.deleted or project.deleted
	// is earlier. The threads of a pruned project go with it (a thread's
	// thread.created names its project), whether deleted or not: without
	// its project a rebuild would not give a thread its row. The zero time
	// prunes no deleted stream.
	DeletedBefore time.Time
	// ArchivedBefore prunes the streams of threads archived before it (the
	// at of their first thread.archived), deleted or not. The zero time
	// prunes no archived stream.
	ArchivedBefore time.Time
	// Archive, when set, receives each pruned stream's events before they
	// are deleted, in the export format (see AppendJSONL), stream after
	// stream in the order of their first event, each stream's in version
	// order. The archive is a log of its own: its sequences run 1, 2, 3…
	// in the order it lists the events, and each stream's versions 1, 2,
	// 3… (as stored, unless compaction left gaps in them); ids, times and
	// metadata are the stored ones. So it imports into an empty store. A stream's
	// events are written, and the writer flushed (and synced, when it has
	// a Sync method, as an *os.File has), inside the transaction that
	// deletes them, before it deletes them: a failed write prunes nothing
	// more.
	Archive io.Writer
	// DryRun reports what would be pruned and changes nothing (Archive
	// is not written).
	DryRun bool
	// Vacuum gives the space back to the file system at the end, as
	// CompactOpts.Vacuum does: on SQLite a full VACUUM (without it, a file
	// in incremental vacuum mode, as new files are, gives its free pages
	// back with PRAGMA incremental_vacuum, and an older file keeps them
	// for later writes); on PostgreSQL a VACUUM of the log, instead of
	// leaving the dead rows to autovacuum.
	Vacuum bool

	// leaveSpace leaves the space to the caller (Maintain), which gives
	// it back once after its prune and compaction.
	leaveSpace bool
}

// Tombstone records a stream that retention pruned: its last version, the
// sequences of its first and last events, how many events it had and their payload
// bytes, and when it was pruned. Verify counts the sequences of its events
// as recorded gaps, an Append to the stream fails with ErrStreamPruned,
// and export and import carry it.
type Tombstone struct {
	Stream                                   string
	LastVersion, FirstSequence, LastSequence int64
	Events, Bytes                            int64
	PrunedAt                                 time.Time
}

// PruneReport is what Prune removed, or would remove with DryRun.
type PruneReport struct {
	DeletedBefore, ArchivedBefore time.Time
	DryRun                        bool
	// Streams, Events and Bytes are the streams pruned, their events and
	// their payload bytes.
	Streams, Events, Bytes int64
	// ProjectionRows are the projection rows removed with them.
	ProjectionRows int64
	// Archived are the events written to PruneOpts.Archive.
	Archived int64
	// BytesFreed is the space the database's data no longer takes: on
	// SQLite the pages freed (pages in use before less after), on
	// PostgreSQL as BytesReclaimed. BytesReclaimed is how much the
	// database shrank (Stats' Database.Bytes before less after): on SQLite
	// the freed pages that the vacuum gave back to the file system, on
	// PostgreSQL the change of pg_database_size (0 until a VACUUM returns
	// pages). Both are 0 on a dry run.
	BytesFreed, BytesReclaimed int64
	// Tombstones are those written, one per pruned stream, in the order
	// pruned (with DryRun, those that would be).
	Tombstones []Tombstone
	Elapsed    time.Duration
}

// prunedRows are the projection tables whose rows belong to one stream,
// by the stream's prefix, in the order Prune deletes them, and the
// condition on the entity's id (bound once) that selects the rows: a
// table keyed by message, say, selects by the thread's messages before
// projection_messages loses them.
var prunedRows = []struct{ prefix, table, where string }{
	{"thread:", "projection_messages", "thread_id = ?"},
	{"thread:", "projection_turns", "thread_id = ?"},
	{"thread:", "checkpoints", "thread_id = ?"},
	{"thread:", "projection_threads", "thread_id = ?"},
	{"project:", "projection_projects", "project_id = ?"},
}

// Prune removes the streams that opts selects (see PruneOpts) with their
// projection rows, writing a Tombstone for each, after writing their
// events to opts.Archive when set. It removes what Stats counts as
// Prunable under the same cut-offs. It prunes one stream per write
// transaction, so appends from other goroutines and processes wait for
// one stream at most, and a crash leaves every stream either whole or
// pruned with its tombstone. A stream pruned by another Prune meanwhile is
// skipped; events appended to a selected stream before its turn are pruned
// with it. The projections stay as a rebuild gives them: the pruned
// streams' rows go, no other row changes.
func (s *Store) Prune(ctx context.Context, opts *PruneOpts) (rep *PruneReport, err error) {
	began := time.Now()
	if opts == nil {
		opts = &PruneOpts{}
	}
	report := &PruneReport{DeletedBefore: opts.DeletedBefore, ArchivedBefore: opts.ArchivedBefore, DryRun: opts.DryRun}
	rep = report
	ctx, done := s.tel.op(ctx, "prune", "prune")
	defer func() {
		report.Elapsed = time.Since(began)
		done(err, "streams", report.Streams, "events", report.Events, "dry_run", report.DryRun)
	}()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if !opts.DryRun {
		if err := s.writable(); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	sd, ok := s.d.(statsDialect)
	if !ok {
		return nil, fmt.Errorf("prune: not implemented on %s", s.d.Name())
	}
	plan, err := prunableStreams(ctx, s.db, s.d, sd, timePtr(opts.DeletedBefore), timePtr(opts.ArchivedBefore))
	if err != nil {
		return nil, fmt.Errorf("prune: select streams: %w", err)
	}
	if opts.DryRun {
		now := time.Now().UTC().Truncate(time.Microsecond)
		for _, p := range plan {
			rows, err := s.countPrunedRows(ctx, p.Stream)
			if err != nil {
				return nil, fmt.Errorf("prune: count rows of %s: %w", p.Stream, err)
			}
			p.PrunedAt = now
			rep.add(p, rows)
		}
		return rep, nil
	}
	before, err := sd.DatabaseStats(ctx, s.db, s.target.DSN)
	if err != nil {
		return nil, fmt.Errorf("prune: read the database's size: %w", err)
	}
	arch := &archiver{}
	if opts.Archive != nil {
		arch.w, arch.sync = bufio.NewWriterSize(opts.Archive, 64<<10), opts.Archive
	}
	for _, p := range plan {
		ts, rows, ok, err := s.pruneStream(ctx, p.Stream, arch)
		if err != nil {
			return rep, fmt.Errorf("prune %s: %w", p.Stream, err)
		}
		if ok {
			rep.add(ts, rows)
		}
	}
	rep.Archived = arch.n
	freed, err := sd.DatabaseStats(ctx, s.db, s.target.DSN)
	if err != nil {
		return rep, fmt.Errorf("prune: read the database's size: %w", err)
	}
	rep.BytesFreed = max(0, usedBytes(databaseStats(before))-usedBytes(databaseStats(freed)))
	if opts.leaveSpace {
		return rep, nil
	}
	if rep.BytesReclaimed, err = s.reclaimSpace(ctx, sd, before.Bytes, rep.Streams > 0, opts.Vacuum); err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	return rep, nil
}

func (r *PruneReport) add(t Tombstone, rows int64) {
	r.Streams++
	r.Events += t.Events
	r.Bytes += t.Bytes
	r.ProjectionRows += rows
	r.Tombstones = append(r.Tombstones, t)
}

// usedBytes is the space a database's data takes: its pages less the
// free ones.
func usedBytes(db DatabaseStats) int64 { return db.Bytes - db.FreePages*db.PageSize }

// timePtr is t, nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// rowsOf returns the projection tables of stream with the condition that
// selects its rows there, and the entity's id it binds.
func rowsOf(stream string) (tables []string, wheres []string, key string) {
	for _, r := range prunedRows {
		if id, ok := strings.CutPrefix(stream, r.prefix); ok {
			tables, wheres, key = append(tables, r.table), append(wheres, r.where), id
		}
	}
	return tables, wheres, key
}

// countPrunedRows counts the projection rows that pruning stream removes.
func (s *Store) countPrunedRows(ctx context.Context, stream string) (int64, error) {
	tables, wheres, key := rowsOf(stream)
	var n int64
	for i, t := range tables {
		c, err := queryInt64(ctx, s.db, s.d.Bind("SELECT COUNT(*) FROM "+t+" WHERE "+wheres[i]), key)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// archiver writes pruned events to an archive, numbering them 1, 2, 3…
type archiver struct {
	w    *bufio.Writer // nil: no archive
	sync io.Writer     // PruneOpts.Archive, synced when it can be
	n    int64
	line []byte
}

// pruneStream prunes stream in one write transaction: it reads what the
// stream holds, archives its events, deletes its projection rows and
// events and writes its tombstone. ok is false when the stream has no
// events (pruned already).
func (s *Store) pruneStream(ctx context.Context, stream string, arch *archiver) (ts Tombstone, rows int64, ok bool, err error) {
	sd := s.d.(statsDialect)
	err = s.writeTx(ctx, func(tx *ent.Tx) error {
		ts = Tombstone{Stream: stream, PrunedAt: time.Now().UTC().Truncate(time.Microsecond)}
		rs, err := tx.QueryContext(ctx, s.d.Bind("SELECT COUNT(*), COALESCE(SUM("+sd.PayloadBytes()+"), 0), COALESCE(MAX(stream_version), 0), COALESCE(MIN(sequence), 0), COALESCE(MAX(sequence), 0) FROM events WHERE stream_id = ?"), stream)
		if err != nil {
			return fmt.Errorf("read the stream: %w", err)
		}
		for rs.Next() {
			err = rs.Scan(&ts.Events, &ts.Bytes, &ts.LastVersion, &ts.FirstSequence, &ts.LastSequence)
		}
		if err = errors.Join(err, rs.Err(), rs.Close()); err != nil {
			return fmt.Errorf("read the stream: %w", err)
		}
		if ts.Events == 0 {
			return nil
		}
		if arch.w != nil {
			if err := s.archiveStream(ctx, tx, stream, arch); err != nil {
				return err
			}
		}
		tables, wheres, key := rowsOf(stream)
		for i, t := range tables {
			res, err := tx.ExecContext(ctx, s.d.Bind("DELETE FROM "+t+" WHERE "+wheres[i]), key)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", t, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			rows += n
		}
		if _, err := tx.ExecContext(ctx, s.d.Bind("DELETE FROM events WHERE stream_id = ?"), stream); err != nil {
			return fmt.Errorf("delete events: %w", err)
		}
		if err := s.insertTombstone(ctx, tx, ts); err != nil {
			return fmt.Errorf("write tombstone: %w", err)
		}
		ok = true
		return nil
	})
	if err != nil {
		return Tombstone{}, 0, false, withContext(ctx, err)
	}
	return ts, rows, ok, nil
}

// archiveStream writes the events of stream to arch and flushes it.
func (s *Store) archiveStream(ctx context.Context, tx *ent.Tx, stream string, arch *archiver) error {
	var version int64 // renumbered: a compacted stream has gaps
	for rec, err := range s.pages(ctx, tx, "stream_id = ? AND stream_version >= ?", "stream_version", []any{stream}, 1,
		func(r *Recorded) int64 { return r.StreamVersion + 1 }) {
		if de := (*DecodeError)(nil); errors.As(err, &de) {
			return fmt.Errorf("archive: %w; the log holds an event this build cannot read (run `peon-store verify`)", err)
		}
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		arch.n++
		version++
		rec.Sequence, rec.StreamVersion = arch.n, version
		if arch.line, err = AppendJSONL(arch.line[:0], &rec); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if _, err := arch.w.Write(arch.line); err != nil {
			return fmt.Errorf("archive: write: %w", err)
		}
	}
	if err := arch.w.Flush(); err != nil {
		return fmt.Errorf("archive: write: %w", err)
	}
	if f, ok := arch.sync.(interface{ Sync() error }); ok {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("archive: sync: %w", err)
		}
	}
	return nil
}

// prunableStreams selects the streams that retention prunes under the
// cut-offs (nil: that kind off), in the order of their first event, with
// their events and payload bytes: a stream deleted before deleted (the at
// of its first thread.deleted or project.deleted), a thread archived
// before archived (its first thread.archived), and the threads whose
// thread.created names a project pruned so. Prune prunes them and Stats
// counts them: one query for both.
func prunableStreams(ctx context.Context, q querier, d dialect, sd statsDialect, deleted, archived *time.Time) ([]Tombstone, error) {
	if deleted == nil && archived == nil {
		return nil, nil
	}
	query := `WITH s AS (
			SELECT stream_id, COUNT(*) AS n, COALESCE(SUM(` + sd.PayloadBytes() + `), 0) AS b,
				MIN(sequence) AS first, MAX(sequence) AS last, MAX(stream_version) AS version,
				MIN(CASE WHEN event_type IN (?, ?) THEN occurred_at END) AS deleted_at,
				MIN(CASE WHEN event_type = ? THEN occurred_at END) AS archived_at,
				MIN(CASE WHEN event_type = ? THEN ` + sd.PayloadText("project_id") + ` END) AS project
			FROM events GROUP BY stream_id
		)
		SELECT s.stream_id, s.n, s.b, s.version, s.first, s.last FROM s
			LEFT JOIN s p ON p.stream_id = '` + orchestration.ProjectStream("") + `' || s.project
		WHERE COALESCE(s.deleted_at < ?, FALSE) OR COALESCE(s.archived_at < ?, FALSE) OR COALESCE(p.deleted_at < ?, FALSE)
		ORDER BY s.first`
	args := []any{orchestration.TypeThreadDeleted, orchestration.TypeProjectDeleted, orchestration.TypeThreadArchived,
		orchestration.TypeThreadCreated, timeArg(deleted), timeArg(archived), timeArg(deleted)}
	rows, err := q.QueryContext(ctx, d.Bind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tombstone
	for rows.Next() {
		var t Tombstone
		if err := rows.Scan(&t.Stream, &t.Events, &t.Bytes, &t.LastVersion, &t.FirstSequence, &t.LastSequence); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// tombstones reads the stored tombstones in the order of their last
// sequence.
func (s *Store) tombstones(ctx context.Context, q querier) ([]Tombstone, error) {
	rows, err := q.QueryContext(ctx, "SELECT stream_id, last_version, first_sequence, last_sequence, events, bytes, pruned_at FROM stream_tombstones ORDER BY last_sequence, stream_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tombstone
	for rows.Next() {
		var t Tombstone
		var at storedTime
		if err := rows.Scan(&t.Stream, &t.LastVersion, &t.FirstSequence, &t.LastSequence, &t.Events, &t.Bytes, &at); err != nil {
			return nil, err
		}
		if t.PrunedAt, err = at.time(); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Tombstones returns the tombstones of the pruned streams, in the order of
// their last sequence.
func (s *Store) Tombstones(ctx context.Context) ([]Tombstone, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	ts, err := s.tombstones(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("tombstones: %w", err)
	}
	return ts, nil
}

// insertTombstone writes t.
func (s *Store) insertTombstone(ctx context.Context, q querier, t Tombstone) error {
	_, err := q.ExecContext(ctx, s.d.Bind("INSERT INTO stream_tombstones (stream_id, last_version, first_sequence, last_sequence, events, bytes, pruned_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		t.Stream, t.LastVersion, t.FirstSequence, t.LastSequence, t.Events, t.Bytes, t.PrunedAt)
	return err
}

// appendTombstoneJSONL appends t as one line of the export format: an
// object whose one key is "tombstone".
func appendTombstoneJSONL(dst []byte, t *Tombstone) []byte {
	dst = append(dst, `{"tombstone":{"stream":`...)
	dst = appendJSONString(dst, t.Stream)
	dst = append(dst, `,"last_version":`...)
	dst = strconv.AppendInt(dst, t.LastVersion, 10)
	dst = append(dst, `,"first_sequence":`...)
	dst = strconv.AppendInt(dst, t.FirstSequence, 10)
	dst = append(dst, `,"last_sequence":`...)
	dst = strconv.AppendInt(dst, t.LastSequence, 10)
	dst = append(dst, `,"events":`...)
	dst = strconv.AppendInt(dst, t.Events, 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, t.Bytes, 10)
	dst = append(dst, `,"pruned_at":"`...)
	dst = t.PrunedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}}\n"...)
}
