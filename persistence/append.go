package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
		b.events[i], b.payload[i] = e, p
		if st := e.StreamID(); !seen[st] {
			seen[st] = true
			b.streams = append(b.streams, st)
		}
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
	tx, err := s.client.Tx(ctx)
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
	recs, fresh, err := s.appendIn(ctx, tx, b)
	if err != nil {
		return nil, err
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
func (s *Store) appendIn(ctx context.Context, tx *ent.Tx, b *batch) (recs []Recorded, fresh bool, err error) {
	d := s.d
	wrap := func(what string, err error) error {
		return fmt.Errorf("append to %s: %s: %w", b.streams[0], what, err)
	}
	if err := d.lockAppend(ctx, tx); err != nil {
		return nil, false, wrap("lock", err)
	}
	if id := b.opts.CommandID; id != "" {
		prior, err := s.collect(ctx, tx, "command_id = ?", "sequence", id)
		if err != nil {
			return nil, false, wrap("look up command "+id, err)
		}
		if len(prior) > 0 {
			return prior, false, nil
		}
	}
	versions := make(map[string]int64, len(b.streams))
	for _, st := range b.streams {
		v, err := queryInt64(ctx, tx, d.bind("SELECT MAX(stream_version) FROM events WHERE stream_id = ?"), st)
		if err != nil {
			return nil, false, wrap("read version", err)
		}
		if want, ok := b.opts.ExpectedVersions[st]; ok && want != v {
			return nil, false, &VersionConflictError{Stream: st, Expected: want, Actual: v}
		}
		versions[st] = v
	}
	last, err := d.lastSequence(ctx, tx)
	if err != nil {
		return nil, false, wrap("read last sequence", err)
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
			SchemaVersion: 1,
			Event:         e,
			OccurredAt:    e.OccurredAt(),
			RecordedAt:    now,
			CommandID:     b.opts.CommandID,
			CorrelationID: b.opts.CorrelationID,
			CausationID:   b.opts.CausationID,
			Payload:       b.payload[i],
		}
	}
	if err := insertEvents(ctx, tx, d, recs); err != nil {
		return nil, false, wrap("insert", err)
	}
	if err := s.project(ctx, tx, recs); err != nil {
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

var insertSQL sync.Map // key{dialect, rows} -> string

type insertKey struct {
	dialect string
	rows    int
}

// insertStatement returns a multi-row INSERT of n events.
func insertStatement(d dialect, n int) string {
	k := insertKey{d.name(), n}
	if q, ok := insertSQL.Load(k); ok {
		return q.(string)
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	q := d.bind(sb.String())
	if n == insertRows || n <= 16 {
		insertSQL.Store(k, q) // cache the shapes that recur
	}
	return q
}

// insertEvents writes recs with their sequences as given, in multi-row
// statements of at most insertRows rows (and the dialect's argument limit).
func insertEvents(ctx context.Context, q querier, d dialect, recs []Recorded) error {
	per := min(insertRows, d.maxArgs()/eventArgs)
	args := make([]any, 0, min(len(recs), per)*eventArgs)
	for start := 0; start < len(recs); start += per {
		chunk := recs[start:min(start+per, len(recs))]
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, r.Sequence, r.EventID, r.StreamID, r.StreamVersion, r.Type, r.SchemaVersion,
				string(r.Payload), r.OccurredAt, r.RecordedAt,
				nullable(r.CommandID), nullable(r.CorrelationID), nullable(r.CausationID))
		}
		if _, err := q.ExecContext(ctx, insertStatement(d, len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// nullable maps "" to SQL NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
