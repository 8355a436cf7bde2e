package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// An Append that returns an error wrote nothing. The one moment that
// promise cannot be kept from what the client saw is the COMMIT: once it
// is sent, the connection may break, or the append's own time run out,
// before the answer arrives, and the server may have committed or not.
// The store then learns the outcome on another connection: the batch's
// event ids are made before the INSERT, so it looks the first one up
// (settle). Only when that look-up fails too does Append return an
// *UnknownOutcomeError.

// ErrUnknownOutcome: an Append sent its COMMIT but could not learn whether
// the server committed it: the connection broke, or the time the store
// gives an append ran out, while the COMMIT was in flight, and looking the
// batch up on another connection failed too (within 5 s). The
// events may or may not be stored. Every other error of Append means that
// nothing was written; check for this one first. To learn the outcome
// later, look up the event id the *UnknownOutcomeError carries, or send
// the Append again with the same CommandID, which stores it at most once.
var ErrUnknownOutcome = errors.New("append outcome unknown")

// UnknownOutcomeError says which append's outcome is unknown and why. It
// matches ErrUnknownOutcome, and deliberately nothing else: its cause may
// be a context's error, and a caller that took that to mean "nothing was
// written" would be wrong.
type UnknownOutcomeError struct {
	Stream   string // the first stream of the append, as in its other errors
	EventID  string // the id of the batch's first event: stored if and only if the batch committed
	Sequence int64  // the sequence that event has if it committed
	Err      error  // what ended the COMMIT's round trip
	Lookup   error  // why looking the event up failed
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("append to %s: outcome unknown: the COMMIT was sent, then %v; "+
		"looking up its first event %s (sequence %d) failed too: %v; "+
		"look that event up, or send the append again with the same command id",
		e.Stream, e.Err, e.EventID, e.Sequence, e.Lookup)
}

// Is reports whether target is ErrUnknownOutcome.
func (e *UnknownOutcomeError) Is(target error) bool { return target == ErrUnknownOutcome }

// resolveTimeout bounds settle: the look-up runs on a context of its own,
// derived from none of the append's (which may have ended), and tries
// again with backoff until this much time has passed.
const resolveTimeout = 5 * time.Second

// settle learns whether recs, whose COMMIT was sent and failed with err
// or went unanswered, are stored. It returns recs when they are, err when
// they are not, and an *UnknownOutcomeError for err when it cannot tell. The
// connection that sent the COMMIT must be closed or back in the pool
// first: on PostgreSQL the look-up waits until no transaction holds the
// append lock, and that one would hold it until its session ends.
func (s *Store) settle(ctx context.Context, recs []Recorded, err error) ([]Recorded, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveTimeout)
	defer cancel()
	first := recs[0]
	delay := 10 * time.Millisecond
	for {
		stored, lerr := s.stored(rctx, first.EventID)
		if lerr == nil {
			if stored {
				return recs, nil
			}
			return nil, err
		}
		select {
		case <-rctx.Done():
			return nil, &UnknownOutcomeError{Stream: first.StreamID, EventID: first.EventID, Sequence: first.Sequence, Err: err, Lookup: lerr}
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// stored reports whether the event with id eventID is in the log, read
// after every append transaction that could still commit it has ended.
// On SQLite that is at once: an in-process transaction has ended when its
// Commit returns.
func (s *Store) stored(ctx context.Context, eventID string) (bool, error) {
	if a, ok := s.d.(awaiter); ok {
		return a.StoredAfterAppends(ctx, s.db, eventID)
	}
	n, err := queryInt64(ctx, s.db, s.d.Bind("SELECT COUNT(*) FROM events WHERE event_id = ?"), eventID)
	return n > 0, err
}

// cutShort reports whether ctx has ended and err, which work under ctx
// failed with, does not say so itself: a driver may report a statement
// that the end of ctx cut short in words of its own (SQLite's
// "interrupted (9)", database/sql's "driver: bad connection",
// "transaction has already been committed or rolled back", "statement is
// closed"), while callers tell a cancel by errors.Is(err,
// context.Canceled). withContext and ctxErr word such an error, each for
// its callers.
func cutShort(ctx context.Context, err error) bool {
	cerr := ctx.Err()
	return err != nil && cerr != nil && !errors.Is(err, cerr)
}

// withContext returns err, or, when ctx cut it short (see cutShort), an
// error that wraps ctx's and err.
func withContext(ctx context.Context, err error) error {
	if !cutShort(ctx, err) {
		return err
	}
	return fmt.Errorf("%w (%w)", ctx.Err(), err)
}

// ctxErr returns err, or, when ctx cut it short (see cutShort), an error
// for the stream that wraps the context's error instead of the driver's
// words, which tell the caller nothing. Only for an error of an append
// that wrote nothing; an *UnknownOutcomeError and a version or command
// conflict are returned as they are.
func ctxErr(ctx context.Context, stream string, err error) error {
	if !cutShort(ctx, err) || errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrCommandConflict) {
		return err
	}
	return fmt.Errorf("append to %s: %w; nothing was written", stream, ctx.Err())
}
