package persistence

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/schemamigrate"
	"github.com/peonhq/peon/orchestration"
)

// Stats is what a store holds, where its space goes, and what a retention
// policy would remove from it now, as Store.Stats reads it from one
// snapshot of the database. Bytes are payload bytes as stored: the length
// of the payload column's JSON text.
type Stats struct {
	// At is when the stats were read; the policy's ages count back from it.
	At time.Time
	// Head is the last sequence, Events the rows of the log, Bytes their
	// payload bytes and Streams the streams they belong to.
	Head, Events, Bytes, Streams int64
	// Types are the event types the log holds, by name.
	Types []TypeStats
	// Largest are the largest streams by payload bytes, largest first
	// (ties by stream id); StatsOpts.Largest says how many.
	Largest []StreamStats
	// Database is the size of the database and of each of peon's tables.
	Database DatabaseStats
	// Retention is the policy that Compaction and Prunable count under.
	Retention Retention
	// Compaction is what compaction would remove now.
	Compaction CompactionStats
	// Deleted are the streams of deleted threads and projects: a stream
	// that holds a thread.deleted or project.deleted event.
	Deleted StreamSet
	// Archived are the streams of archived threads that are not deleted:
	// a stream that holds a thread.archived event and no thread.deleted.
	Archived StreamSet
	// Prunable is what retention would prune now under Retention.
	Prunable PruneStats
}

// TypeStats counts the events of one type.
type TypeStats struct {
	Type          string
	Events, Bytes int64
}

// StreamStats counts the events of one stream; Version is its current
// version.
type StreamStats struct {
	Stream                 string
	Events, Bytes, Version int64
}

// StreamSet counts a set of streams, their events and payload bytes.
type StreamSet struct {
	Streams, Events, Bytes int64
}

// CompactionStats is what Compact would fold now: for each message
// completed before Before (the at of the first message.completed after its
// message.added), the message.delta events of the same message (stream,
// turn and message id) between the two become one, so a message with
// n ≥ 2 such deltas gives up n-1 events (a reply of more than 4,096
// deltas folds into one event per 4,096).
type CompactionStats struct {
	Before time.Time
	// Messages are the messages with two deltas or more to fold; Events
	// the events folding them would remove.
	Messages, Events int64
}

// PruneStats is what retention would prune now, as Store.Prune selects
// it: the streams deleted before DeletedBefore or archived before
// ArchivedBefore (the at of the first such event), and the threads of the
// projects pruned so (see PruneOpts). A zero time means that kind of
// pruning is off.
type PruneStats struct {
	StreamSet
	DeletedBefore, ArchivedBefore time.Time
}

// DatabaseStats is the size of a store's database.
type DatabaseStats struct {
	// Bytes is the database's size: on SQLite its pages (PageCount ×
	// PageSize), on PostgreSQL pg_database_size.
	Bytes int64
	// FileBytes and WALBytes are the sizes of a SQLite database file and
	// of its write-ahead log (0 in memory and on PostgreSQL).
	FileBytes, WALBytes int64
	// PageSize, PageCount and FreePages (SQLite's freelist_count: pages
	// that hold nothing and that a vacuum would give back) are SQLite's; 0
	// on PostgreSQL.
	PageSize, PageCount, FreePages int64
	// Tables are peon's tables, by name.
	Tables []TableStats
}

// TableStats is the space one table takes. On PostgreSQL TableBytes is
// pg_relation_size, IndexBytes pg_indexes_size and TotalBytes
// pg_total_relation_size (with TOAST); on SQLite they are the pages of
// the table's b-tree, of its indexes, and both (dbstat).
type TableStats struct {
	Table                              string
	TableBytes, IndexBytes, TotalBytes int64
}

// StatsOpts are the optional inputs of StatsWith. A nil *StatsOpts is the
// same as the zero value.
type StatsOpts struct {
	// Retention is the policy to count under; the zero value is the
	// default one: compaction of messages completed more than 24 h ago,
	// no pruning.
	Retention Retention
	// Largest is how many of the largest streams to list; 0 means 10.
	Largest int
}

// DefaultLargestStreams is how many streams Stats lists by default.
const DefaultLargestStreams = 10

// Stats is StatsWith under the default policy (compaction after 24 h, no
// pruning), listing the 10 largest streams.
func (s *Store) Stats(ctx context.Context) (*Stats, error) {
	return s.StatsWith(ctx, nil)
}

// StatsWith reads what the store holds per event type, its largest
// streams, the size of its database and tables, and what compaction and
// retention would remove now under opts.Retention, from one snapshot.
// It changes nothing and works on a read-only store. Each figure is one
// query over the log, each a full read of the events table, so the time
// grows with the log (see docs/CLI.md); what compaction would fold is
// counted in Go from one read of the message events in the log's order,
// with a few bytes of state per message.
func (s *Store) StatsWith(ctx context.Context, opts *StatsOpts) (*Stats, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if opts == nil {
		opts = &StatsOpts{}
	}
	if err := opts.Retention.check(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if opts.Largest < 0 {
		return nil, fmt.Errorf("stats: Largest is %d; want 0 or more", opts.Largest)
	}
	sd, ok := s.d.(statsDialect)
	if !ok {
		return nil, fmt.Errorf("stats: not implemented on %s", s.d.Name())
	}
	st := &Stats{At: time.Now().UTC(), Retention: opts.Retention}
	conn, end, err := s.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer end()
	r := statsReader{ctx: ctx, q: conn, d: s.d, sd: sd}
	steps := []struct {
		what string
		fn   func(*Stats) error
	}{
		{"count events by type", r.types},
		{"find the largest streams", func(st *Stats) error { return r.largest(st, cmp.Or(opts.Largest, DefaultLargestStreams)) }},
		{"count what compaction would remove", r.compaction},
		{"count deleted and archived streams", r.retained},
		{"read the database's size", func(st *Stats) error {
			db, err := sd.DatabaseStats(ctx, conn, s.target.DSN)
			st.Database = databaseStats(db)
			return err
		}},
	}
	for _, step := range steps {
		if err := step.fn(st); err != nil {
			return nil, fmt.Errorf("stats: %s: %w", step.what, err)
		}
	}
	peon := s.peonTables()
	st.Database.Tables = slices.DeleteFunc(st.Database.Tables, func(t TableStats) bool { return !peon[t.Table] })
	return st, nil
}

// snapshot returns a connection in a read-only transaction whose first
// read takes the snapshot that all its reads see (SnapshotBegin), and the
// func that ends it: it rolls the transaction back and drops a connection
// that cannot. On SQLite the snapshot pins the WAL, on PostgreSQL the rows
// it sees, until it ends; neither takes a write lock.
func (s *Store) snapshot(ctx context.Context) (*sql.Conn, func(), error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	end := func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil && !s.d.Features().Private {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	if _, err := conn.ExecContext(ctx, s.d.SnapshotBegin()); err != nil {
		end()
		return nil, nil, err
	}
	return conn, end, nil
}

// peonTables returns the tables of peon's migrations and Atlas's
// revision table, read once from the embedded directory.
func (s *Store) peonTables() map[string]bool {
	peon := map[string]bool{schemamigrate.RevisionsTable: true}
	dir, err := embeddedDir(s.d)
	if err != nil {
		return peon
	}
	files, err := dir.Files()
	if err != nil {
		return peon
	}
	maps.Copy(peon, createdTables(files))
	return peon
}

// statsReader runs Stats' queries inside one snapshot.
type statsReader struct {
	ctx context.Context
	q   querier
	d   dialect
	sd  statsDialect
}

func (r statsReader) query(query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := r.q.QueryContext(r.ctx, r.d.Bind(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return r.ctx.Err()
}

func (r statsReader) types(st *Stats) error {
	return r.query("SELECT event_type, COUNT(*), COALESCE(SUM("+r.sd.PayloadBytes()+"), 0) FROM events GROUP BY event_type ORDER BY event_type"+r.d.ByteOrder(),
		nil, func(rows *sql.Rows) error {
			var t TypeStats
			if err := rows.Scan(&t.Type, &t.Events, &t.Bytes); err != nil {
				return err
			}
			st.Types = append(st.Types, t)
			st.Events += t.Events
			st.Bytes += t.Bytes
			return nil
		})
}

func (r statsReader) largest(st *Stats, n int) error {
	head, err := queryInt64(r.ctx, r.q, "SELECT COALESCE(MAX(sequence), 0) FROM events")
	if err != nil {
		return err
	}
	st.Head = head
	return r.query(`SELECT stream_id, COUNT(*), COALESCE(SUM(`+r.sd.PayloadBytes()+`), 0) AS bytes, MAX(stream_version), COUNT(*) OVER ()
		FROM events GROUP BY stream_id ORDER BY bytes DESC, stream_id`+r.d.ByteOrder()+` LIMIT ?`,
		[]any{n}, func(rows *sql.Rows) error {
			var s StreamStats
			if err := rows.Scan(&s.Stream, &s.Events, &s.Bytes, &s.Version, &st.Streams); err != nil {
				return err
			}
			st.Largest = append(st.Largest, s)
			return nil
		})
}

// compaction counts what Compact would fold now (see fold.go): it reads
// the message events once, in the order of the log (the primary key's, so
// the database sorts nothing), through the planner Compact uses, which
// keeps a small state per message.
func (r statsReader) compaction(st *Stats) error {
	before, _, _ := st.Retention.horizons(st.At)
	st.Compaction.Before = before
	plan := newFoldPlanner()
	return r.query(foldQuery(r.d, r.sd)+" ORDER BY sequence", foldArgs(before, math.MaxInt64), func(rows *sql.Rows) error {
		var fr foldRow
		if err := fr.scan(rows); err != nil {
			return err
		}
		folds := plan.see(fr)
		if len(folds) > 0 {
			st.Compaction.Messages++
		}
		for _, f := range folds {
			st.Compaction.Events += int64(len(f.Deltas) - 1)
		}
		return nil
	})
}

// retained counts the deleted and the archived streams in one pass over
// the log's streams, and those the policy would prune as Prune selects
// them (prunableStreams).
func (r statsReader) retained(st *Stats) error {
	_, deleted, archived := st.Retention.horizons(st.At)
	if deleted != nil {
		st.Prunable.DeletedBefore = *deleted
	}
	if archived != nil {
		st.Prunable.ArchivedBefore = *archived
	}
	q := `SELECT
			COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN n ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN b ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN n ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN b ELSE 0 END), 0)
		FROM (
			SELECT COUNT(*) AS n, COALESCE(SUM(` + r.sd.PayloadBytes() + `), 0) AS b,
				MIN(CASE WHEN event_type IN (?, ?) THEN occurred_at END) AS deleted_at,
				MIN(CASE WHEN event_type = ? THEN occurred_at END) AS archived_at
			FROM events GROUP BY stream_id
		) t
		WHERE deleted_at IS NOT NULL OR archived_at IS NOT NULL`
	args := []any{orchestration.TypeThreadDeleted, orchestration.TypeProjectDeleted, orchestration.TypeThreadArchived}
	if err := r.query(q, args, func(rows *sql.Rows) error {
		return rows.Scan(&st.Deleted.Streams, &st.Deleted.Events, &st.Deleted.Bytes,
			&st.Archived.Streams, &st.Archived.Events, &st.Archived.Bytes)
	}); err != nil {
		return err
	}
	prunable, err := prunableStreams(r.ctx, r.q, r.d, r.sd, deleted, archived)
	if err != nil {
		return err
	}
	for _, p := range prunable {
		st.Prunable.Streams++
		st.Prunable.Events += p.Events
		st.Prunable.Bytes += p.Bytes
	}
	return r.ctx.Err()
}

// timeArg is a time argument, NULL for none.
func timeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// databaseStats maps an engine's sizes to the store's.
func databaseStats(db engine.DatabaseStats) DatabaseStats {
	out := DatabaseStats{Bytes: db.Bytes, FileBytes: db.FileBytes, WALBytes: db.WALBytes,
		PageSize: db.PageSize, PageCount: db.PageCount, FreePages: db.FreePages}
	for _, t := range db.Tables {
		out.Tables = append(out.Tables, TableStats(t))
	}
	return out
}
