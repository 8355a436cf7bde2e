package persistence

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// eventColumns are the columns of events in the order every statement of
// this package writes and reads them.
const eventColumns = "sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at, command_id, correlation_id, causation_id"

const eventArgs = 12 // the number of eventColumns

// insertRows is how many events one INSERT statement carries at most: the
// largest shape (see shapes.go), within what the dialect allows.
const insertRows = maxShape

// insertStatement returns a multi-row INSERT of n events; with notify,
// one that also notifies when the dialect does (see
// dialect.notifyingInsert).
func insertStatement(d dialect, n int, notify bool) string {
	var sb strings.Builder
	sb.Grow(64 + len(eventColumns) + n*26)
	sb.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	q := sb.String()
	if prefix, suffix := d.NotifyingInsert(); notify && suffix != "" {
		q = prefix + q + suffix
	}
	return d.Bind(q)
}

// inserts returns the statements that write recs with their sequences as
// given: multi-row INSERTs of the shapes chunkSizes gives (at most
// insertRows rows, and the dialect's argument limit). With notify, the
// last one also notifies other processes of the new head, where the
// dialect does.
func (s *Store) inserts(recs []Recorded, notify bool) []pipeStmt {
	if _, suffix := s.d.NotifyingInsert(); suffix == "" {
		notify = false
	}
	sizes := chunkSizes(len(recs), maxChunk(s.d))
	stmts := make([]pipeStmt, 0, len(sizes))
	start := 0
	for i, n := range sizes {
		chunk := recs[start : start+n]
		start += n
		lastChunk := i == len(sizes)-1
		args := make([]any, 0, len(chunk)*eventArgs+1)
		for i := range chunk {
			r := &chunk[i]
			args = append(args, r.Sequence, r.EventID, r.StreamID, r.StreamVersion, r.Type, r.SchemaVersion,
				string(r.Payload), r.OccurredAt, r.RecordedAt,
				nullable(r.CommandID), nullable(r.CorrelationID), nullable(r.CausationID))
		}
		what := "insert"
		if notify && lastChunk {
			args = append(args, strconv.FormatInt(chunk[len(chunk)-1].Sequence, 10))
			what = "insert and notify"
		}
		stmts = append(stmts, pipeStmt{What: what, Query: s.stmts.insert(s.d, len(chunk), notify && lastChunk), Args: args})
	}
	return stmts
}

// insertEvents writes recs with their sequences as given (see inserts).
func (s *Store) insertEvents(ctx context.Context, q querier, recs []Recorded) error {
	for _, st := range s.inserts(recs, false) {
		if _, err := s.stmts.exec(ctx, q, st.Query, st.Args...); err != nil {
			return err
		}
	}
	return nil
}

// headReads returns the statements that read, inside the append lock,
// what an append of b checks: the last sequence taken, the current
// version of each stream (0 for a new one) and whether b's command was
// stored before. They are one statement unless b has more than
// headStreams streams; each reads a power of two of streams, the last
// stream of its chunk again as padding (see shapes.go). Once their rows
// are scanned into their dest, head returns what they read.
func (s *Store) headReads(b *batch) (stmts []pipeStmt, head func() (last int64, versions map[string]int64, seen bool)) {
	// vals[0] is the last sequence, vals[1] the command (NULL when not
	// stored), vals[2+i] the version of b.streams[i]; pad takes the
	// padding's.
	vals := make([]sql.NullInt64, 2+len(b.streams))
	var pad sql.NullInt64
	for start := 0; start < len(b.streams); start += headStreams {
		chunk := b.streams[start:min(start+headStreams, len(b.streams))]
		n := padded(len(chunk))
		first := start == 0
		var dest, args []any
		if first {
			// Without a command the look-up of NULL finds nothing: one
			// shape for both.
			dest = append(dest, &vals[0], &vals[1])
			args = append(args, nullable(b.opts.CommandID))
		}
		for i, st := range chunk {
			dest = append(dest, &vals[2+start+i])
			args = append(args, st, st)
		}
		for range n - len(chunk) {
			dest = append(dest, &pad)
			args = append(args, chunk[len(chunk)-1], chunk[len(chunk)-1])
		}
		stmts = append(stmts, pipeStmt{
			What:  "read versions",
			Query: s.stmts.head(s.d, n, first),
			Args:  args,
			Dest:  dest,
		})
	}
	return stmts, func() (int64, map[string]int64, bool) {
		versions := make(map[string]int64, len(b.streams))
		for i, st := range b.streams {
			versions[st] = vals[2+i].Int64
		}
		return vals[0].Int64, versions, vals[1].Valid
	}
}

// streamVersionSQL reads one stream's version, bound to the stream
// twice: the stream_version of its last event; else prunedVersion for a
// stream that retention pruned; else NULL (no stream). COALESCE reads the
// tombstones only for a stream without events (a new stream, once). The
// last event's is ORDER BY … LIMIT 1 rather than MAX(): PostgreSQL plans
// MAX(stream_version) … WHERE stream_id = $1 as an aggregate over all of
// the stream's index entries when it expects few (a prepared statement's
// generic plan, made while the table is small, keeps that plan as the
// stream grows: every Append read its whole stream); LIMIT 1 on the
// (stream_id, stream_version) index is one descent whatever the estimate.
// SQLite reads both in one descent.
const streamVersionSQL = "COALESCE((SELECT stream_version FROM events WHERE stream_id = ? ORDER BY stream_version DESC LIMIT 1), " +
	"(SELECT -1 FROM stream_tombstones WHERE stream_id = ?))"

// headStatement returns a query of headReads for n streams; the first
// read of an append (first) begins with the last sequence and a column
// that is 1 when the command's events are stored and NULL when not.
func headStatement(d dialect, n int, first bool) string {
	var sb strings.Builder
	sb.WriteString("SELECT ")
	if first {
		sb.WriteString(d.LastSequenceSQL() + ", ")
		sb.WriteString(commandStoredSQL + ", ")
	}
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(streamVersionSQL)
	}
	return d.Bind(sb.String())
}

// commandStoredSQL is 1 when the command given as its one argument stored
// events, whether they are in the log or compaction folded some away
// (compacted_commands), and NULL when not or when the argument is NULL.
const commandStoredSQL = "(SELECT 1 FROM (SELECT CAST(? AS TEXT) AS c) k WHERE EXISTS (SELECT 1 FROM events WHERE command_id = k.c) " +
	"OR EXISTS (SELECT 1 FROM compacted_commands WHERE command_id = k.c))"

// nullable maps "" to SQL NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
