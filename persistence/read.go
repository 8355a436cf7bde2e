package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"

	"go.opentelemetry.io/otel/attribute"

	"github.com/peonhq/peon/internal/clip"
	"github.com/peonhq/peon/orchestration"
)

// pageSize is how many rows a replay or read holds in memory at once.
const pageSize = 1000

// ReplayAll yields every event of the log in sequence order. See ReplayFrom.
func (s *Store) ReplayAll(ctx context.Context) iter.Seq2[Recorded, error] {
	return s.ReplayFrom(ctx, 1)
}

// ReplayFrom yields the events whose sequence is at least from, in order.
// It reads the log in pages of bounded size, so memory stays flat however
// long the log, and holds no connection while the caller's loop body runs.
// A row that cannot be decoded is yielded with a *DecodeError and the
// replay goes on; a database error or the end of ctx ends it with that
// error.
func (s *Store) ReplayFrom(ctx context.Context, from int64) iter.Seq2[Recorded, error] {
	return s.replayFrom(ctx, s.db, from)
}

// replayFrom is ReplayFrom through q: inside q's transaction, every page
// reads its snapshot.
func (s *Store) replayFrom(ctx context.Context, q querier, from int64) iter.Seq2[Recorded, error] {
	return s.pages(ctx, q, "sequence >= ?", "sequence", nil, from,
		func(r *Recorded) int64 { return r.Sequence + 1 })
}

// ReadStream yields the events of one stream whose version is at least
// fromVersion, in version order, with ReplayFrom's guarantees.
func (s *Store) ReadStream(ctx context.Context, streamID string, fromVersion int64) iter.Seq2[Recorded, error] {
	return s.pages(ctx, s.db, "stream_id = ? AND stream_version >= ?", "stream_version", []any{streamID}, fromVersion,
		func(r *Recorded) int64 { return r.StreamVersion + 1 })
}

// StreamVersion returns the current version of the stream streamID: the
// stream version of its last event, or NoStream (0) when it has none. A
// service that restarts sets AppendOpts.ExpectedVersions from it without
// reading the stream; the Append then fails with ErrVersionConflict if
// another writer appended to the stream meanwhile. It is one read of the
// (stream_id, stream_version) index, and works on a read-only store. A
// stream that retention pruned has no version: a *StreamPrunedError.
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	if streamID == "" {
		return 0, errors.New("stream version: empty stream id")
	}
	if s.closed.Load() {
		return 0, ErrClosed
	}
	v, err := queryInt64(ctx, s.db, s.stmts.head(s.d, 1, false), streamID, streamID)
	if err != nil {
		return 0, fmt.Errorf("stream version of %s: %w", clip.String(streamID), err)
	}
	if v == prunedVersion {
		return 0, fmt.Errorf("stream version: %w", &StreamPrunedError{Stream: streamID})
	}
	return v, nil
}

// pages runs "SELECT … WHERE <where> ORDER BY <order> LIMIT pageSize"
// repeatedly, with args followed by the key from, which next advances past
// the last row of each page.
func (s *Store) pages(ctx context.Context, q querier, where, order string, args []any, from int64, next func(*Recorded) int64) iter.Seq2[Recorded, error] {
	query := s.d.Bind("SELECT " + readColumns(s.d) + " FROM events WHERE " + where + " ORDER BY " + order + " LIMIT ?")
	return func(yield func(Recorded, error) bool) {
		if s.closed.Load() {
			yield(Recorded{}, ErrClosed)
			return
		}
		page := make([]Recorded, 0, pageSize)
		errs := make([]error, 0, pageSize)
		for {
			if err := ctx.Err(); err != nil {
				yield(Recorded{}, err)
				return
			}
			var err error
			pctx, end := s.tel.start(ctx, "peon.replay.page", attribute.Int64("peon.replay.from", from))
			page, errs, err = s.readPage(pctx, q, query, append(args, from, pageSize), page[:0], errs[:0])
			end(err, attribute.Int("peon.replay.events", len(page)))
			if err != nil {
				yield(Recorded{}, fmt.Errorf("read events: %w", err))
				return
			}
			for i := range page {
				if err := ctx.Err(); err != nil {
					yield(Recorded{}, err)
					return
				}
				if !yield(page[i], errs[i]) {
					return
				}
			}
			if len(page) < pageSize {
				return
			}
			from = next(&page[len(page)-1])
			clear(page) // let the payloads go before the next page
		}
	}
}

// readPage appends the rows of one query to page, with the decode error of
// each row (nil when it decoded) at the same index of errs.
func (s *Store) readPage(ctx context.Context, q querier, query string, args []any, page []Recorded, errs []error) ([]Recorded, []error, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return page, errs, err
	}
	defer rows.Close()
	for rows.Next() {
		r, derr, err := scanRecord(rows)
		if err != nil {
			return page, errs, err
		}
		page = append(page, r)
		errs = append(errs, derr)
	}
	return page, errs, rows.Err()
}

// scanRecord reads one row of readColumns and decodes its payload. A
// decode failure is returned as derr, with the row's other fields set.
func scanRecord(rows *sql.Rows) (r Recorded, derr error, err error) {
	var (
		cmd, corr, cause     sql.NullString
		occurred, recordedAt storedTime
	)
	if err := rows.Scan(&r.Sequence, &r.EventID, &r.StreamID, &r.StreamVersion, &r.Type, &r.SchemaVersion,
		&r.Payload, &occurred, &recordedAt, &cmd, &corr, &cause); err != nil {
		return r, nil, err
	}
	r.CommandID, r.CorrelationID, r.CausationID = cmd.String, corr.String, cause.String
	var timeErr error
	if r.RecordedAt, err = recordedAt.time(); err != nil {
		// A damaged timestamp is this row's problem, not the replay's.
		timeErr = fmt.Errorf("recorded_at: %w", err)
	}
	var (
		e      orchestration.Event
		decErr error
	)
	if r.SchemaVersion != orchestration.SchemaVersion {
		decErr = fmt.Errorf("schema_version %d: this build reads version %d (written by a newer peon?)", r.SchemaVersion, orchestration.SchemaVersion)
	} else {
		e, decErr = orchestration.Decode(r.Type, r.Payload)
	}
	if decErr == nil && timeErr != nil {
		decErr = timeErr
	} else if decErr == nil {
		// Append refuses invalid events, so a stored one was damaged.
		if verr := e.Validate(); verr != nil {
			decErr = fmt.Errorf("stored %s is not valid: %w", r.Type, verr)
		} else if st := e.StreamID(); st != r.StreamID {
			decErr = fmt.Errorf("stored in stream %s, but the event belongs to %s", clip.String(r.StreamID), clip.String(st))
		}
	}
	if decErr != nil {
		// occurred_at is the event's `at`: only a row that does not decode
		// needs the column.
		if r.OccurredAt, err = occurred.time(); err != nil {
			decErr = errors.Join(decErr, fmt.Errorf("occurred_at: %w", err))
		}
		return r, &DecodeError{Sequence: r.Sequence, Type: r.Type, Err: decErr}, nil
	}
	r.Event = e
	r.OccurredAt = e.OccurredAt()
	return r, nil, nil
}

// collect reads the events of one command, in order, into memory (a
// small result) inside q.
func (s *Store) collect(ctx context.Context, q querier, commandID string) ([]Recorded, error) {
	rows, done, err := s.stmts.query(ctx, q, s.stmts.command(s.d), commandID)
	if err != nil {
		return nil, err
	}
	defer done()
	var recs []Recorded
	for rows.Next() {
		r, derr, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		if derr != nil {
			return nil, derr
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// commandStatement is the query of collect.
func commandStatement(d dialect) string {
	return d.Bind("SELECT " + readColumns(d) + " FROM events WHERE command_id = ? ORDER BY sequence")
}
