package persistence

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// eventColumns are the columns of events in the order every statement of
// this package writes and reads them.
const eventColumns = "sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at, command_id, correlation_id, causation_id"

const eventArgs = 12 // the number of eventColumns

// insertRows is how many events one multi-row INSERT statement carries
// at most: the largest shape (see shapes.go), within what the dialect
// allows.
const insertRows = maxShape

// arrayRows is the shape of the INSERT of arrays (see arrayInsert), which
// carries any number of events.
const arrayRows = 0

// maxArrayBytes bounds what one INSERT of arrays carries, about: the
// lengths of its events' payloads and texts. A message of the protocol
// (the Bind that carries a statement's parameters) and an array are at
// most 1 GB: pgx refused 1,100 events of 1 MiB in one INSERT ("message
// body too large"), which the multi-row INSERTs of 512 rows at most had
// carried. Appends of events below 64 KiB each, the common case by far,
// stay one statement up to a thousand events and more; larger ones take
// one statement per 64 MiB, all of the same text.
const maxArrayBytes = 64 << 20

// insertStatement returns the INSERT of n events into events (n is
// arrayRows for the INSERT of arrays); with notify, one that also
// notifies when the dialect does (see dialect.notifyingInsert).
func insertStatement(d dialect, n int, notify bool) string {
	q := insertInto("events", n)
	if prefix, suffix := d.NotifyingInsert(); notify && suffix != "" {
		q = prefix + q + suffix
	}
	return d.Bind(q)
}

// insertInto returns the INSERT of n events into table, a multi-row
// INSERT, or the INSERT of arrays when n is arrayRows. The caller binds
// it.
func insertInto(table string, n int) string {
	if n == arrayRows {
		return "INSERT INTO " + table + " (" + eventColumns + ") " + arrayInsert
	}
	var sb strings.Builder
	sb.Grow(64 + len(eventColumns) + n*26)
	sb.WriteString("INSERT INTO " + table + " (" + eventColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return sb.String()
}

// arrayInsert is the rows of an INSERT of arrays, for a dialect with array
// parameters (PostgreSQL): one array of each column of eventColumns, in
// its order, element i of each making row i (see arrayArgs). One statement
// and twelve parameters whatever the number of events: the server parses
// and plans one text, and pgx encodes twelve arrays instead of twelve
// parameters a row.
const arrayInsert = "SELECT * FROM unnest(CAST(? AS bigint[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS bigint[]), " +
	"CAST(? AS text[]), CAST(? AS bigint[]), CAST(? AS json[]), CAST(? AS timestamptz[]), CAST(? AS timestamptz[]), " +
	"CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]))"

// insertChunk is what one INSERT of inserts writes: rows events (arrayRows
// for the INSERT of arrays) and their arguments.
type insertChunk struct {
	rows int
	args []any
}

// insertChunks returns the INSERTs that write recs: on a dialect with
// array parameters, INSERTs of arrays (one unless recs carry more than
// maxArrayBytes); elsewhere multi-row INSERTs of the shapes chunkSizes
// gives (at most insertRows rows, and the dialect's argument limit).
func (s *Store) insertChunks(recs []Recorded) []insertChunk {
	if s.d.Features().ArrayParameters {
		var chunks []insertChunk
		for start := 0; start < len(recs); {
			end := arrayChunkEnd(recs, start, maxArrayBytes)
			chunks = append(chunks, insertChunk{rows: arrayRows, args: arrayArgs(recs[start:end])})
			start = end
		}
		return chunks
	}
	sizes := chunkSizes(len(recs), maxChunk(s.d))
	chunks := make([]insertChunk, len(sizes))
	start := 0
	for i, n := range sizes {
		args := make([]any, 0, n*eventArgs+1) // and the notify's
		for i := range recs[start : start+n] {
			r := &recs[start+i]
			args = append(args, r.Sequence, r.EventID, r.StreamID, r.StreamVersion, r.Type, r.SchemaVersion,
				string(r.Payload), r.OccurredAt, r.RecordedAt,
				nullable(r.CommandID), nullable(r.CorrelationID), nullable(r.CausationID))
		}
		chunks[i] = insertChunk{rows: n, args: args}
		start += n
	}
	return chunks
}

// arrayChunkEnd returns where the INSERT of arrays that begins with
// recs[start] ends: after the last event that keeps it within max bytes
// (see maxArrayBytes), and at least one event past start.
func arrayChunkEnd(recs []Recorded, start, max int) int {
	size := 0
	for i := start; i < len(recs); i++ {
		r := &recs[i]
		// The texts, and the fixed-size values and each element's length
		// word, about.
		size += len(r.Payload) + len(r.EventID) + len(r.StreamID) + len(r.Type) +
			len(r.CommandID) + len(r.CorrelationID) + len(r.CausationID) + 96
		if size > max && i > start {
			return i
		}
	}
	return len(recs)
}

// arrayArgs returns the twelve arrays of an INSERT of arrays of recs, in
// the order of eventColumns. An empty command, correlation or causation
// id is a nil element, SQL NULL, as nullable makes it in a multi-row
// INSERT; the others point into recs, which the caller keeps until the
// statement has run.
func arrayArgs(recs []Recorded) []any {
	n := len(recs)
	seqs, versions, schemas := make([]int64, n), make([]int64, n), make([]int64, n)
	ids, streams, types := make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	occurred, recorded := make([]time.Time, n), make([]time.Time, n)
	commands, correlations, causations := make([]*string, n), make([]*string, n), make([]*string, n)
	for i := range recs {
		r := &recs[i]
		seqs[i], ids[i], streams[i], versions[i], types[i], schemas[i] = r.Sequence, r.EventID, r.StreamID, r.StreamVersion, r.Type, int64(r.SchemaVersion)
		payloads[i], occurred[i], recorded[i] = r.Payload, r.OccurredAt, r.RecordedAt
		commands[i], correlations[i], causations[i] = nullableRef(&r.CommandID), nullableRef(&r.CorrelationID), nullableRef(&r.CausationID)
	}
	return append(make([]any, 0, eventArgs+1), // and the notify's
		seqs, ids, streams, versions, types, schemas, payloads, occurred, recorded, commands, correlations, causations)
}

// inserts returns the statements that write recs with their sequences as
// given (see insertChunks). With notify, the last one also notifies other
// processes of the new head, where the dialect does.
func (s *Store) inserts(recs []Recorded, notify bool) []pipeStmt {
	if _, suffix := s.d.NotifyingInsert(); suffix == "" {
		notify = false
	}
	chunks := s.insertChunks(recs)
	stmts := make([]pipeStmt, len(chunks))
	for i, c := range chunks {
		last := notify && i == len(chunks)-1
		what := "insert"
		if last {
			c.args = append(c.args, strconv.FormatInt(recs[len(recs)-1].Sequence, 10))
			what = "insert and notify"
		}
		stmts[i] = pipeStmt{What: what, Query: s.stmts.insert(s.d, c.rows, last), Args: c.args}
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

// nullableRef is nullable for an element of an array: nil for "", else
// s itself.
func nullableRef(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}
