package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/clip"
	"github.com/peonhq/peon/internal/projector"
	"github.com/peonhq/peon/internal/sqlx"
	"github.com/peonhq/peon/orchestration"
)

// AppendOpts are the optional inputs of an Append. A nil *AppendOpts is
// the same as the zero value.
type AppendOpts struct {
	// ExpectedVersions maps a stream id to the version the stream must be
	// at for the Append to succeed: NoStream (0) for a stream that must
	// not exist yet. Streams absent from the map are not checked.
	ExpectedVersions map[string]int64
	// CommandID makes the Append idempotent: when an Append with the same
	// CommandID was stored before, nothing is written and the records of
	// that first Append are returned. Empty means no idempotency.
	CommandID string
	// CorrelationID and CausationID are stored on every event of the
	// Append. Empty means NULL.
	CorrelationID string
	CausationID   string
}

// batch is an Append checked and encoded before any lock is taken.
type batch struct {
	opts    AppendOpts
	events  []orchestration.Event
	payload [][]byte
	streams []string // distinct streams of events and ExpectedVersions, sorted
}

// stream is the stream an error of the append names: the first of its
// streams, clipped.
func (b *batch) stream() string { return clip.String(b.streams[0]) }

// prepare admits events (see admit) and the ids of opts, or says which
// event is refused and why.
func prepare(opts *AppendOpts, events []orchestration.Event) (*batch, error) {
	b := &batch{events: make([]orchestration.Event, len(events)), payload: make([][]byte, len(events))}
	if opts != nil {
		b.opts = *opts
	}
	seen := make(map[string]bool, 2)
	for i, e := range events {
		e, p, err := admit(e)
		if err != nil {
			return nil, &InvalidEventError{Index: i, Type: typeName(events[i]), Err: err}
		}
		b.events[i], b.payload[i] = e, p
		if st := e.StreamID(); !seen[st] {
			seen[st] = true
			b.streams = append(b.streams, st)
		}
	}
	if err := admitMeta(b.opts.CommandID, b.opts.CorrelationID, b.opts.CausationID); err != nil {
		// The ids are stored with every event: the first one says it.
		ie := &InvalidEventError{Index: 0, Err: err}
		if len(events) > 0 {
			ie.Type = events[0].EventType()
		}
		return nil, ie
	}
	if err := checkExpected(b.opts.ExpectedVersions); err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	for st := range b.opts.ExpectedVersions {
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
// Nothing is written when an event is refused (ErrInvalidEvent: not of a
// catalogued type, not valid, over a limit; see MaxIDBytes, MaxJSONDepth,
// MaxPayloadBytes), a stream is not at its expected version
// (ErrVersionConflict) or the database fails. When opts.CommandID was
// stored before, nothing is written: with the same events the records of
// that first Append are returned, with other events the error is a
// *CommandConflictError (ErrCommandConflict).
// Every error means that nothing was written, but for ErrUnknownOutcome:
// the COMMIT was sent and whether it committed could not be learned (see
// UnknownOutcomeError). When ctx ends, the error matches ctx's.
func (s *Store) Append(ctx context.Context, opts *AppendOpts, events ...orchestration.Event) (recs []Recorded, err error) {
	fresh := false
	ctx, done := s.tel.startAppend(ctx, events)
	defer func() { done(recs, fresh, err) }()
	if err := s.writable(); err != nil {
		return nil, err
	}
	b, err := prepare(opts, events)
	if err != nil || len(b.events) == 0 {
		return nil, err
	}
	recs, fresh, err = s.commit(ctx, b) // see group.go
	if err != nil {
		return nil, err
	}
	if fresh {
		s.grew.fire()
	}
	return recs, nil
}

// appendOwnTx is Append in a transaction of its own, one statement at a
// time.
//
// When ctx ends, database/sql rolls the transaction back by itself, and
// the statements and the Commit after that fail in its words; the error
// then says what ended it: ctx's (see ctxErr). A Commit that fails may
// still have committed (modernc interrupts a COMMIT when ctx ends during
// it), so the append then looks its first event up (settle).
func (s *Store) appendOwnTx(ctx context.Context, b *batch) (recs []Recorded, fresh bool, err error) {
	if s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	// A plain *sql.Tx, not an ent one: the append runs raw statements only,
	// and through it they reuse the statements prepared on its connection.
	s.stmts.warm(ctx, s.db, s.d, b)
	tx, err := s.db.BeginTx(ctx, s.d.AppendTxOptions())
	if err != nil {
		return nil, false, ctxErr(ctx, b.stream(), fmt.Errorf("append to %s: begin: %w", b.stream(), err))
	}
	recs, fresh, err = s.appendIn(ctx, tx, b)
	if err != nil {
		tx.Rollback()
		return nil, false, ctxErr(ctx, b.stream(), err)
	}
	if err := tx.Commit(); err != nil {
		if !fresh {
			return recs, false, nil // it only read the first append's records
		}
		recs, err := s.settle(ctx, recs, err)
		if errors.Is(err, ErrUnknownOutcome) {
			return nil, false, err
		}
		if err != nil {
			return nil, false, ctxErr(ctx, b.stream(), fmt.Errorf("append to %s: commit: %w", b.stream(), err))
		}
		return recs, true, nil
	}
	return recs, fresh, nil
}

// AppendTx is Append inside a transaction the caller holds: the events and
// their projection updates commit or roll back with tx. On SQLite, tx must
// come from this store's Client (its transactions begin IMMEDIATE); do not
// use the store's own methods while tx is open, use tx. On PostgreSQL, tx
// must be READ COMMITTED, the default: under REPEATABLE READ or
// SERIALIZABLE, AppendTx writes nothing and returns ErrTxIsolation.
func (s *Store) AppendTx(ctx context.Context, tx *ent.Tx, opts *AppendOpts, events ...orchestration.Event) (recs []Recorded, err error) {
	fresh := false
	ctx, done := s.tel.startAppend(ctx, events)
	defer func() { done(recs, fresh, err) }()
	if err := s.writable(); err != nil {
		return nil, err
	}
	b, err := prepare(opts, events)
	if err != nil || len(b.events) == 0 {
		return nil, err
	}
	// A savepoint makes the append all or nothing inside the caller's
	// transaction too: a failure after the INSERT (a projection, the
	// notify) must not leave events behind for the caller to commit.
	if _, err := tx.ExecContext(ctx, "SAVEPOINT peon_append"); err != nil {
		return nil, fmt.Errorf("append to %s: savepoint: %w", b.stream(), err)
	}
	recs, fresh, err = s.appendIn(ctx, tx, b)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT peon_append"); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("roll back to savepoint: %w", rerr))
		}
		tx.ExecContext(ctx, "RELEASE SAVEPOINT peon_append")
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT peon_append"); err != nil {
		return nil, fmt.Errorf("append to %s: release savepoint: %w", b.stream(), err)
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
	wrap := func(what string, err error) error {
		return fmt.Errorf("append to %s: %s: %w", b.stream(), what, err)
	}
	if err := s.lockAppend(ctx, tx); err != nil {
		return nil, false, wrap("lock", err)
	}
	stmts, head := s.headReads(b)
	for _, st := range stmts {
		if err := s.stmts.queryRow(ctx, tx, st.Query, st.Args, st.Dest...); err != nil {
			return nil, false, wrap(st.What, err)
		}
	}
	last, versions, seen := head()
	if seen {
		prior, err := s.priorCommand(ctx, tx, b)
		return prior, false, err
	}
	if recs, err = b.number(last, versions); err != nil {
		return nil, false, err
	}
	for _, st := range s.inserts(recs, true) {
		if _, err := s.stmts.exec(ctx, tx, st.Query, st.Args...); err != nil {
			return nil, false, wrap(st.What, err)
		}
	}
	projTx := tx
	if t, ok := tx.(*sql.Tx); ok {
		projTx = preparedTx{t, &s.stmts}
	}
	if err := s.projectAppend(ctx, projTx, recs, nil); err != nil {
		return nil, false, wrap("project", err)
	}
	return recs, true, nil
}

// project applies recs to the projection tables inside tx, the append's
// own transaction; turns, when not nil, is the look-up of their turns,
// read ahead (see readTurns).
func (s *Store) project(ctx context.Context, tx querier, recs []Recorded, turns *projector.TurnsRead) error {
	if s.opts.NoProjections {
		return nil
	}
	evs := make([]projector.Event, len(recs))
	for i := range recs {
		evs[i] = projector.Event{Sequence: recs[i].Sequence, Event: recs[i].Event}
	}
	ap := s.applier(tx)
	ap.Turns = turns
	return ap.Apply(ctx, evs)
}

// readTurns returns, for a pipelined append of evs that projects, the
// Applier's look-up of their turns as a statement that goes with the
// head read (see projector.TurnsRead), or nil when there is none to make.
func (s *Store) readTurns(evs []orchestration.Event) (*projector.TurnsRead, []pipeStmt) {
	if s.opts.NoProjections || !s.d.Features().ArrayParameters {
		return nil, nil
	}
	r := projector.ReadTurns(evs)
	if r == nil {
		return nil, nil
	}
	return r, []pipeStmt{{What: "look up turns", Query: s.d.Bind(r.Query()), Args: r.Args(), Dest: r.Dest()}}
}

// applier returns a projector.Applier that runs its statements through q
// in the engine's own form.
func (s *Store) applier(q sqlx.Querier) *projector.Applier {
	ap := projector.New(q, s.d.Bind)
	ap.Arrays = s.d.Features().ArrayParameters
	ap.JSONLog = s.d.Features().JSONPayloads
	return ap
}

// prunedVersion is the version the head reads give a pruned stream (see
// streamVersionSQL).
const prunedVersion = -1

// number refuses a pruned stream, checks the expected versions of b against versions, the streams'
// current ones, and returns its events as records numbered after last.
// It updates versions.
func (b *batch) number(last int64, versions map[string]int64) ([]Recorded, error) {
	for _, st := range b.streams {
		if versions[st] == prunedVersion {
			return nil, &StreamPrunedError{Stream: st}
		}
	}
	for _, st := range b.streams {
		if want, ok := b.opts.ExpectedVersions[st]; ok && want != versions[st] {
			return nil, &VersionConflictError{Stream: st, Expected: want, Actual: versions[st]}
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	recs := make([]Recorded, len(b.events))
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
	return recs, nil
}
