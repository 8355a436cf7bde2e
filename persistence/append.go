package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/orchestration"
)

// batch is an Append checked and encoded before any lock is taken.
type batch struct {
	opts    AppendOpts
	events  []orchestration.Event
	payload [][]byte
	streams []string // distinct streams of events and ExpectedVersions, sorted
}

// prepare validates and encodes events, or says which one is invalid.
func prepare(opts *AppendOpts, events []orchestration.Event) (*batch, error) {
	b := &batch{events: make([]orchestration.Event, len(events)), payload: make([][]byte, len(events))}
	if opts != nil {
		b.opts = *opts
	}
	seen := make(map[string]bool, 2)
	for i, e := range events {
		if e == nil {
			return nil, &InvalidEventError{Index: i, Err: errors.New("nil event")}
		}
		if err := e.Validate(); err != nil {
			return nil, &InvalidEventError{Index: i, Type: e.EventType(), Err: err}
		}
		e = orchestration.Normalize(e)
		p, err := orchestration.Encode(e)
		if err != nil {
			return nil, &InvalidEventError{Index: i, Type: e.EventType(), Err: err}
		}
		if len(p) > MaxPayloadBytes {
			return nil, &InvalidEventError{Index: i, Type: e.EventType(),
				Err: fmt.Errorf("payload is %d bytes, more than the limit of %d", len(p), MaxPayloadBytes)}
		}
		if err := checkText(e, p); err != nil {
			return nil, &InvalidEventError{Index: i, Type: e.EventType(), Err: err}
		}
		b.events[i], b.payload[i] = e, p
		if st := e.StreamID(); !seen[st] {
			seen[st] = true
			b.streams = append(b.streams, st)
		}
	}
	if err := checkOptsText(&b.opts); err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	for st, v := range b.opts.ExpectedVersions {
		if v < 0 {
			return nil, fmt.Errorf("append: expected version %d of %s is negative", v, st)
		}
		if !seen[st] {
			seen[st] = true
			b.streams = append(b.streams, st)
		}
	}
	slices.Sort(b.streams)
	return b, nil
}

// Append stores events as one atomic batch with contiguous sequences and
// applies them to the projections in the same transaction. It returns the
// stored records in order. opts may be nil.
//
// Nothing is written when an event is invalid (ErrInvalidEvent), a stream
// is not at its expected version (ErrVersionConflict) or the database
// fails. When opts.CommandID was stored before, nothing is written and the
// records of that first Append are returned.
func (s *Store) Append(ctx context.Context, opts *AppendOpts, events ...orchestration.Event) ([]Recorded, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	b, err := prepare(opts, events)
	if err != nil || len(b.events) == 0 {
		return nil, err
	}
	if s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	// A plain *sql.Tx, not an ent one: the append runs raw statements only,
	// and through it they reuse the statements prepared on its connection.
	s.stmts.warm(ctx, s.db, s.d, b)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("append to %s: begin: %w", b.streams[0], err)
	}
	recs, fresh, err := s.appendIn(ctx, tx, b)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("append to %s: commit: %w", b.streams[0], err)
	}
	if fresh {
		s.grew.fire()
	}
	return recs, nil
}

// AppendTx is Append inside a transaction the caller holds: the events and
// their projection updates commit or roll back with tx. On SQLite, tx must
// come from this store's Client (its transactions begin IMMEDIATE); do not
// use the store's own methods while tx is open, use tx.
func (s *Store) AppendTx(ctx context.Context, tx *ent.Tx, opts *AppendOpts, events ...orchestration.Event) ([]Recorded, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	b, err := prepare(opts, events)
	if err != nil || len(b.events) == 0 {
		return nil, err
	}
	// A savepoint makes the append all or nothing inside the caller's
	// transaction too: a failure after the INSERT (a projection, the
	// notify) must not leave events behind for the caller to commit.
	if _, err := tx.ExecContext(ctx, "SAVEPOINT peon_append"); err != nil {
		return nil, fmt.Errorf("append to %s: savepoint: %w", b.streams[0], err)
	}
	recs, fresh, err := s.appendIn(ctx, tx, b)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT peon_append"); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		tx.ExecContext(ctx, "RELEASE SAVEPOINT peon_append")
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT peon_append"); err != nil {
		return nil, fmt.Errorf("append to %s: release savepoint: %w", b.streams[0], err)
	}
	if fresh {
		tx.OnCommit(func(next ent.Committer) ent.Committer {
			return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
				err := next.Commit(ctx, tx)
				if err == nil {
					s.grew.fire()
				}
				return err
			})
		})
	}
	return recs, nil
}

// appendIn does the work of an append inside tx. fresh is false when the
// command was stored before and recs are that first append's records.
func (s *Store) appendIn(ctx context.Context, tx querier, b *batch) (recs []Recorded, fresh bool, err error) {
	d := s.d
	wrap := func(what string, err error) error {
		return fmt.Errorf("append to %s: %s: %w", b.streams[0], what, err)
	}
	if err := d.lockAppend(ctx, tx); err != nil {
		return nil, false, wrap("lock", err)
	}
	if id := b.opts.CommandID; id != "" {
		prior, err := s.collect(ctx, tx, id)
		if err != nil {
			return nil, false, wrap("look up command "+id, err)
		}
		if len(prior) > 0 {
			return prior, false, nil
		}
	}
	last, versions, err := s.readHead(ctx, tx, b.streams)
	if err != nil {
		return nil, false, wrap("read versions", err)
	}
	for _, st := range b.streams {
		if want, ok := b.opts.ExpectedVersions[st]; ok && want != versions[st] {
			return nil, false, &VersionConflictError{Stream: st, Expected: want, Actual: versions[st]}
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	recs = make([]Recorded, len(b.events))
	for i, e := range b.events {
		st := e.StreamID()
		versions[st]++
		recs[i] = Recorded{
			Sequence:      last + 1 + int64(i),
			EventID:       uuid.Must(uuid.NewV7()).String(),
			StreamID:      st,
			StreamVersion: versions[st],
			Type:          e.EventType(),
			SchemaVersion: orchestration.SchemaVersion,
			Event:         e,
			OccurredAt:    e.OccurredAt(),
			RecordedAt:    now,
			CommandID:     b.opts.CommandID,
			CorrelationID: b.opts.CorrelationID,
			CausationID:   b.opts.CausationID,
			Payload:       b.payload[i],
		}
	}
	if err := s.insertEvents(ctx, tx, recs); err != nil {
		return nil, false, wrap("insert", err)
	}
	projTx := tx
	if t, ok := tx.(*sql.Tx); ok {
		projTx = preparedTx{t, &s.stmts}
	}
	if err := s.project(ctx, projTx, recs); err != nil {
		return nil, false, wrap("project", err)
	}
	if err := d.notify(ctx, tx, recs[len(recs)-1].Sequence); err != nil {
		return nil, false, wrap("notify", err)
	}
	return recs, true, nil
}

// eventColumns are the columns of events in the order every statement of
// this package writes and reads them.
const eventColumns = "sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at, command_id, correlation_id, causation_id"

const eventArgs = 12 // the number of eventColumns

// insertRows is how many events one INSERT statement carries at most.
const insertRows = 500

// insertChunk is how many rows each INSERT of a batch of n events writes
// (the last one the rest), within what the dialect allows per statement.
func insertChunk(d dialect, n int) int {
	return min(n, insertRows, d.maxArgs()/eventArgs)
}

// insertStatement returns a multi-row INSERT of n events.
func insertStatement(d dialect, n int) string {
	var sb strings.Builder
	sb.Grow(64 + len(eventColumns) + n*26)
	sb.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return d.bind(sb.String())
}

// insertEvents writes recs with their sequences as given, in multi-row
// statements of at most insertRows rows (and the dialect's argument limit).
func (s *Store) insertEvents(ctx context.Context, q querier, recs []Recorded) error {
	per := insertChunk(s.d, len(recs))
	args := make([]any, 0, per*eventArgs)
	for start := 0; start < len(recs); start += per {
		chunk := recs[start:min(start+per, len(recs))]
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, r.Sequence, r.EventID, r.StreamID, r.StreamVersion, r.Type, r.SchemaVersion,
				string(r.Payload), r.OccurredAt, r.RecordedAt,
				nullable(r.CommandID), nullable(r.CorrelationID), nullable(r.CausationID))
		}
		if _, err := s.stmts.exec(ctx, q, s.stmts.insert(s.d, len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// headStreams is how many streams one readHead statement looks up at most.
const headStreams = 500

// readHead returns, inside the append lock, the last sequence taken and
// the current version of each stream (0 for a new one), in one statement
// when the dialect can read the last sequence as an expression and there
// are at most headStreams streams.
func (s *Store) readHead(ctx context.Context, q querier, streams []string) (last int64, versions map[string]int64, err error) {
	versions = make(map[string]int64, len(streams))
	seqExpr := ""
	if se, ok := s.d.(lastSequenceExpr); ok {
		seqExpr = se.lastSequenceSQL()
	} else if last, err = s.d.lastSequence(ctx, q); err != nil {
		return 0, nil, err
	}
	for start := 0; start < len(streams); start += headStreams {
		chunk := streams[start:min(start+headStreams, len(streams))]
		withSeq := start == 0 && seqExpr != ""
		vals := make([]sql.NullInt64, len(chunk)+1)
		dest := make([]any, 0, len(vals))
		args := make([]any, len(chunk))
		for i, st := range chunk {
			args[i] = st
		}
		if withSeq {
			dest = append(dest, &vals[len(chunk)])
		}
		for i := range chunk {
			dest = append(dest, &vals[i])
		}
		if err := s.stmts.queryRow(ctx, q, s.stmts.head(s.d, len(chunk), withSeq, seqExpr), args, dest...); err != nil {
			return 0, nil, err
		}
		if withSeq {
			last = vals[len(chunk)].Int64
		}
		for i, st := range chunk {
			versions[st] = vals[i].Int64
		}
	}
	return last, versions, nil
}

// lastSequenceExpr is implemented by a dialect that can read the last
// sequence as a scalar expression, which readHead folds into its query.
type lastSequenceExpr interface {
	// lastSequenceSQL is an expression with the value of lastSequence.
	lastSequenceSQL() string
}

// headStatement returns the query of readHead for n streams.
func headStatement(d dialect, n int, withSeq bool, seqExpr string) string {
	var sb strings.Builder
	sb.WriteString("SELECT ")
	if withSeq {
		sb.WriteString(seqExpr + ", ")
	}
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(SELECT MAX(stream_version) FROM events WHERE stream_id = ?)")
	}
	return d.bind(sb.String())
}

// nullable maps "" to SQL NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
