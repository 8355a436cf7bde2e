package persistence

import (
	"database/sql"
	"time"

	"github.com/peonhq/peon/orchestration"
)

// What compaction folds, which Stats counts and Compact does: the same
// planner over the same rows, so the two agree.
//
// A message is its (stream, turn_id, message_id), the columns a
// message.delta's projection matches. A message.added opens it; the
// message.delta events that follow, until its first message.completed,
// are its deltas; that completion closes it, and later events of the same
// message change nothing here. A message.added that comes while it is
// open opens it again: the deltas before it do not fold. Of two
// message.added, the projector may have ignored the first (its turn did
// not exist yet), and then the deltas before the second applied to no
// row, or the second (the row was there), and then they applied: either
// way the deltas after the last one applied, and a fold of those alone
// keeps the text. A message completed before the horizon with two deltas
// or more folds: its deltas become one. Every delta of a message applies
// to its projection row or none does (the row streams from its
// message.added to its message.completed), and no other event changes
// the row's text meanwhile, so the folded delta gives the same row; the
// completion then sets updated_at and last_sequence, as it did.

// maxFoldDeltas bounds the deltas folded into one event (and the
// arguments of one statement): a longer reply folds into several.
const maxFoldDeltas = 4096

// foldRow is a message event as the planner reads it.
type foldRow struct {
	Sequence, Version int64
	Stream, Type      string
	Old               bool // a completion before the horizon
	TurnID, MessageID sql.NullString
}

// foldQuery selects the foldRows of the log: the caller adds its range
// and order, and passes foldArgs.
func foldQuery(d dialect, sd statsDialect) string {
	return "SELECT sequence, stream_version, stream_id, event_type, " +
		"CASE WHEN event_type = ? AND occurred_at < ? AND sequence <= ? THEN 1 ELSE 0 END, " +
		sd.PayloadText("turn_id") + ", " + sd.PayloadText("message_id") +
		" FROM events WHERE event_type IN (?, ?, ?)"
}

// foldArgs are the arguments of foldQuery, before and until the horizon,
// followed by those of the caller's range.
func foldArgs(before time.Time, until int64, more ...any) []any {
	if before.IsZero() {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // no time limit
	}
	args := []any{orchestration.TypeMessageCompleted, before, until,
		orchestration.TypeMessageAdded, orchestration.TypeMessageDelta, orchestration.TypeMessageCompleted}
	return append(args, more...)
}

func (r *foldRow) scan(rows *sql.Rows) error {
	return rows.Scan(&r.Sequence, &r.Version, &r.Stream, &r.Type, &r.Old, &r.TurnID, &r.MessageID)
}

// deltaRef is a delta's place in the log.
type deltaRef struct{ Sequence, Version int64 }

// messageFold is the deltas of one message that fold into the first.
type messageFold struct {
	Stream, TurnID, MessageID string
	Deltas                    []deltaRef
}

type foldKey struct{ stream, turn, message string }

// foldPlanner follows the messages of the log in sequence order.
type foldPlanner struct {
	open   map[foldKey][]deltaRef // opened, not completed: their deltas
	closed map[foldKey]bool
}

func newFoldPlanner() *foldPlanner {
	return &foldPlanner{open: map[foldKey][]deltaRef{}, closed: map[foldKey]bool{}}
}

// see takes the next row and returns the folds it completes, if any: a
// message's deltas in groups of maxFoldDeltas at most.
func (p *foldPlanner) see(r foldRow) []messageFold {
	k := foldKey{r.Stream, r.TurnID.String, r.MessageID.String}
	if p.closed[k] {
		return nil
	}
	deltas, open := p.open[k]
	switch {
	case r.Type == orchestration.TypeMessageAdded:
		p.open[k] = nil // opened, or opened again (see above)
	case r.Type == orchestration.TypeMessageDelta && open:
		p.open[k] = append(deltas, deltaRef{r.Sequence, r.Version})
	case r.Type == orchestration.TypeMessageCompleted && open:
		delete(p.open, k)
		p.closed[k] = true
		if !r.Old {
			return nil
		}
		var folds []messageFold
		for len(deltas) >= 2 {
			n := min(len(deltas), maxFoldDeltas)
			folds = append(folds, messageFold{Stream: k.stream, TurnID: k.turn, MessageID: k.message, Deltas: deltas[:n]})
			deltas = deltas[n:]
		}
		return folds
	}
	return nil
}
