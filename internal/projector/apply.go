package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/sqlx"
	"github.com/peonhq/peon/orchestration"
)

// Names are the projectors, one per table, each with a row in
// projection_state. They advance together: every append moves all of them
// to its last sequence.
var Names = []string{"projects", "threads", "turns", "messages", "checkpoints", "settings"}

// Tables are the projection tables with their primary keys, in the order
// Rebuild and Verify go through them.
var Tables = []struct{ Name, Key string }{
	{"projection_projects", "project_id"},
	{"projection_threads", "thread_id"},
	{"projection_turns", "turn_id"},
	{"projection_messages", "message_id"},
	{"checkpoints", "thread_id, turn_id"},
	{"settings", "key"},
}

// Event is an event with its place in the log.
type Event struct {
	Sequence int64
	Event    orchestration.Event
}

// Applier applies events to the projection tables through the querier
// given to New, which carries the append's transaction.
//
// A statement whose result decides what happens next (a parent lookup, an
// INSERT whose row count says whether the parent changes too) runs at
// once. When the querier is a Deferrer, the others are held back and
// sent with the next statement that needs a result, or with the COMMIT,
// in the same order.
type Applier struct {
	q    sqlx.Querier
	d    Deferrer // q, when it defers; nil when not
	bind func(query string) string
	// seq and typ are the event being applied, for the error of a
	// deferred statement; typ is "" in Advance.
	seq int64
	typ string
}

// New returns an Applier that runs its statements through q, each one
// first passed through bind, which rewrites the ? placeholders they are
// written with into the engine's own; a nil bind leaves them as they are.
func New(q sqlx.Querier, bind func(query string) string) *Applier {
	d, _ := q.(Deferrer)
	if bind == nil {
		bind = unbound
	}
	return &Applier{q: q, d: d, bind: bind}
}

// do runs a statement whose result is not read, or defers it.
func (a *Applier) do(ctx context.Context, query string, args ...any) error {
	if a.d != nil {
		what := fmt.Sprintf("apply %d (%s)", a.seq, a.typ)
		if a.typ == "" {
			what = fmt.Sprintf("advance projectors to %d", a.seq)
		}
		a.d.Defer(what, a.bind(query), args...)
		return nil
	}
	_, err := a.q.ExecContext(ctx, a.bind(query), args...)
	return err
}

// exec runs one statement and returns how many rows it changed.
func (a *Applier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := a.q.ExecContext(ctx, a.bind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// has reports whether a COUNT(*) query finds a row.
func (a *Applier) has(ctx context.Context, query string, args ...any) (bool, error) {
	n, err := sqlx.QueryInt64(ctx, a.q, a.bind(query), args...)
	return n > 0, err
}

// Apply applies evs, in order, and moves every projector to the last one.
// It fails only on a database error: a structurally valid event that
// refers to a missing row changes nothing. The error of a deferred
// statement, a *DeferredError, names its own event.
func (a *Applier) Apply(ctx context.Context, evs []Event) error {
	var de *DeferredError
	for i := 0; i < len(evs); i++ {
		// A run of deltas to one message is one UPDATE: the hot path of a
		// streamed reply.
		if d, ok := evs[i].Event.(orchestration.MessageDelta); ok {
			j, text := i, d.Delta
			for j+1 < len(evs) {
				n, ok := evs[j+1].Event.(orchestration.MessageDelta)
				if !ok || n.MessageID != d.MessageID || n.TurnID != d.TurnID || n.ThreadID != d.ThreadID {
					break
				}
				text += n.Delta
				j++
			}
			last := evs[j].Event.(orchestration.MessageDelta)
			a.seq, a.typ = evs[i].Sequence, d.EventType()
			if err := a.do(ctx, sqlDelta, text, last.At, evs[j].Sequence, d.MessageID, d.TurnID, d.ThreadID); err != nil {
				return fmt.Errorf("apply %d (%s): %w", evs[i].Sequence, d.EventType(), err)
			}
			i = j
			continue
		}
		a.seq, a.typ = evs[i].Sequence, evs[i].Event.EventType()
		if err := a.apply(ctx, evs[i].Sequence, evs[i].Event); err != nil {
			if errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("apply %d (%s): %w", evs[i].Sequence, evs[i].Event.EventType(), err)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	return a.Advance(ctx, evs[len(evs)-1].Sequence)
}

// Advance records that every projector has applied the log up to seq.
func (a *Applier) Advance(ctx context.Context, seq int64) error {
	a.seq, a.typ = seq, ""
	return a.do(ctx, sqlAdvance, seq, time.Now().UTC().Truncate(time.Microsecond))
}

// apply applies one event.
func (a *Applier) apply(ctx context.Context, seq int64, ev orchestration.Event) error {
	var err error
	switch e := ev.(type) {
	case orchestration.ProjectCreated:
		err = a.do(ctx, sqlProjectCreated, e.ProjectID, e.Name, e.WorkspaceRoot, e.At, e.At, seq)
	case orchestration.ProjectRenamed:
		err = a.do(ctx, sqlProjectRenamed, e.Name, e.At, seq, e.ProjectID)
	case orchestration.ProjectDeleted:
		err = a.do(ctx, sqlProjectDeleted, e.At, e.At, seq, e.ProjectID)
	case orchestration.ThreadCreated:
		if ok, err := a.has(ctx, sqlHasProject, e.ProjectID); !ok {
			return err
		}
		err = a.do(ctx, sqlThreadCreated, e.ThreadID, e.ProjectID, e.Title, e.Model, e.At, e.At, seq)
	case orchestration.ThreadRenamed:
		err = a.do(ctx, sqlThreadRenamed, e.Title, e.At, seq, e.ThreadID)
	case orchestration.ThreadArchived:
		err = a.do(ctx, sqlThreadArchived, e.At, e.At, seq, e.ThreadID)
	case orchestration.ThreadDeleted:
		err = a.do(ctx, sqlThreadDeleted, e.At, e.At, seq, e.ThreadID)
	case orchestration.TurnStarted:
		if ok, err := a.has(ctx, sqlHasThread, e.ThreadID); !ok {
			return err
		}
		var n int64
		n, err = a.exec(ctx, sqlTurnStarted, e.TurnID, e.ThreadID, e.ThreadID, e.At, seq)
		if err == nil && n > 0 {
			err = a.do(ctx, sqlThreadTurnStarted, e.TurnID, e.At, seq, e.ThreadID)
		}
	case orchestration.TurnCompleted:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "completed", nil, e.At)
	case orchestration.TurnFailed:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "failed", e.Error, e.At)
	case orchestration.TurnInterrupted:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "interrupted", nil, e.At)
	case orchestration.MessageAdded:
		if ok, err := a.has(ctx, sqlHasTurn, e.TurnID, e.ThreadID); !ok {
			return err
		}
		var n int64
		n, err = a.exec(ctx, sqlMessageAdded, e.MessageID, e.ThreadID, e.TurnID, string(e.Role), e.Text, e.Streaming, seq, e.At, e.At, seq)
		if err == nil && n > 0 {
			err = a.do(ctx, sqlThreadMessageAdded, e.At, seq, e.ThreadID)
		}
	case orchestration.MessageDelta:
		err = a.do(ctx, sqlDelta, e.Delta, e.At, seq, e.MessageID, e.TurnID, e.ThreadID)
	case orchestration.MessageCompleted:
		err = a.do(ctx, sqlMessageCompleted, e.At, seq, e.MessageID, e.TurnID, e.ThreadID)
	case orchestration.CheckpointCreated:
		if ok, err := a.has(ctx, sqlHasTurn, e.TurnID, e.ThreadID); !ok {
			return err
		}
		var n int64
		n, err = a.exec(ctx, sqlCheckpointCreated, e.ThreadID, e.TurnID, e.GitRef, e.Message, e.At, seq)
		if err == nil && n > 0 {
			err = a.do(ctx, sqlTurnCheckpoint, e.GitRef, seq, e.TurnID)
		}
	case orchestration.CheckpointReverted:
		err = a.revert(ctx, seq, e)
	case orchestration.SettingChanged:
		err = a.do(ctx, sqlSettingChanged, e.Key, string(e.Value), e.At, seq)
	default:
		err = fmt.Errorf("no projection for %T", ev)
	}
	return err
}

// endTurn ends a running turn (a turn ends once; a reverted one keeps
// its status), and its thread, when that turn is the thread's running
// one, goes back to idle.
func (a *Applier) endTurn(ctx context.Context, seq int64, threadID, turnID, status string, errText any, at time.Time) error {
	if err := a.do(ctx, sqlTurnEnded, status, errText, at, seq, turnID, threadID); err != nil {
		return err
	}
	return a.do(ctx, sqlThreadIdle, at, seq, threadID, turnID)
}

// revert marks every turn after the checkpoint's turn reverted, and their
// checkpoints.
func (a *Applier) revert(ctx context.Context, seq int64, e orchestration.CheckpointReverted) error {
	// Ordinals start at 1: 0 is no turn with that checkpoint.
	ordinal, err := sqlx.QueryInt64(ctx, a.q, a.bind(sqlCheckpointOrdinal), e.ThreadID, e.GitRef)
	if err != nil || ordinal == 0 {
		return err
	}
	if err := a.do(ctx, sqlCheckpointsReverted, e.At, seq, e.ThreadID, e.ThreadID, ordinal); err != nil {
		return err
	}
	if err := a.do(ctx, sqlTurnsReverted, seq, e.ThreadID, ordinal); err != nil {
		return err
	}
	return a.do(ctx, sqlThreadTouched, e.At, seq, e.ThreadID)
}
