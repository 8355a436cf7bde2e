package projection

import (
	"context"
	"database/sql"
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
// Reset empties them and Verify compares them.
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

// Applier applies events to the projection tables through q, which
// carries the append's transaction.
type Applier struct {
	q       sqlx.Querier
	dialect string
}

// NewApplier returns an Applier for a dialect ("sqlite" or "postgres").
func NewApplier(q sqlx.Querier, dialect string) *Applier {
	return &Applier{q: q, dialect: dialect}
}

// exec runs one statement and returns how many rows it changed.
func (a *Applier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := a.q.ExecContext(ctx, stmt(a.dialect, query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// has reports whether a COUNT(*) query finds a row.
func (a *Applier) has(ctx context.Context, query string, args ...any) (bool, error) {
	n, err := sqlx.QueryInt64(ctx, a.q, stmt(a.dialect, query), args...)
	return n > 0, err
}

// Apply applies evs, in order, and moves every projector to the last one.
// It fails only on a database error: a structurally valid event that
// refers to a missing row changes nothing.
func (a *Applier) Apply(ctx context.Context, evs []Event) error {
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
			if _, err := a.exec(ctx, sqlDelta, text, last.At, evs[j].Sequence, d.MessageID, d.TurnID, d.ThreadID); err != nil {
				return fmt.Errorf("apply %d (%s): %w", evs[i].Sequence, d.EventType(), err)
			}
			i = j
			continue
		}
		if err := a.apply(ctx, evs[i].Sequence, evs[i].Event); err != nil {
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
	_, err := a.exec(ctx, sqlAdvance, seq, time.Now().UTC().Truncate(time.Microsecond))
	return err
}

// apply applies one event.
func (a *Applier) apply(ctx context.Context, seq int64, ev orchestration.Event) error {
	var err error
	switch e := ev.(type) {
	case orchestration.ProjectCreated:
		_, err = a.exec(ctx, sqlProjectCreated, e.ProjectID, e.Name, e.WorkspaceRoot, e.At, e.At, seq)
	case orchestration.ProjectRenamed:
		_, err = a.exec(ctx, sqlProjectRenamed, e.Name, e.At, seq, e.ProjectID)
	case orchestration.ProjectDeleted:
		_, err = a.exec(ctx, sqlProjectDeleted, e.At, e.At, seq, e.ProjectID)
	case orchestration.ThreadCreated:
		if ok, err := a.has(ctx, sqlHasProject, e.ProjectID); !ok {
			return err
		}
		_, err = a.exec(ctx, sqlThreadCreated, e.ThreadID, e.ProjectID, e.Title, e.Model, e.At, e.At, seq)
	case orchestration.ThreadRenamed:
		_, err = a.exec(ctx, sqlThreadRenamed, e.Title, e.At, seq, e.ThreadID)
	case orchestration.ThreadArchived:
		_, err = a.exec(ctx, sqlThreadArchived, e.At, e.At, seq, e.ThreadID)
	case orchestration.ThreadDeleted:
		_, err = a.exec(ctx, sqlThreadDeleted, e.At, e.At, seq, e.ThreadID)
	case orchestration.TurnStarted:
		if ok, err := a.has(ctx, sqlHasThread, e.ThreadID); !ok {
			return err
		}
		var n int64
		n, err = a.exec(ctx, sqlTurnStarted, e.TurnID, e.ThreadID, e.ThreadID, e.At, seq)
		if err == nil && n > 0 {
			_, err = a.exec(ctx, sqlThreadTurnStarted, e.TurnID, e.At, seq, e.ThreadID)
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
			_, err = a.exec(ctx, sqlThreadMessageAdded, e.At, seq, e.ThreadID)
		}
	case orchestration.MessageDelta:
		_, err = a.exec(ctx, sqlDelta, e.Delta, e.At, seq, e.MessageID, e.TurnID, e.ThreadID)
	case orchestration.MessageCompleted:
		_, err = a.exec(ctx, sqlMessageCompleted, e.At, seq, e.MessageID, e.TurnID, e.ThreadID)
	case orchestration.CheckpointCreated:
		if ok, err := a.has(ctx, sqlHasTurn, e.TurnID, e.ThreadID); !ok {
			return err
		}
		var n int64
		n, err = a.exec(ctx, sqlCheckpointCreated, e.ThreadID, e.TurnID, e.GitRef, e.Message, e.At, seq)
		if err == nil && n > 0 {
			_, err = a.exec(ctx, sqlTurnCheckpoint, e.GitRef, seq, e.TurnID)
		}
	case orchestration.CheckpointReverted:
		err = a.revert(ctx, seq, e)
	case orchestration.SettingChanged:
		_, err = a.exec(ctx, sqlSettingChanged, e.Key, string(e.Value), e.At, seq)
	default:
		err = fmt.Errorf("no projection for %T", ev)
	}
	return err
}

// endTurn ends a running turn (a turn ends once; a reverted one keeps
// its status), and its thread, when that turn is the thread's running
// one, goes back to idle.
func (a *Applier) endTurn(ctx context.Context, seq int64, threadID, turnID, status string, errText any, at time.Time) error {
	if _, err := a.exec(ctx, sqlTurnEnded, status, errText, at, seq, turnID, threadID); err != nil {
		return err
	}
	_, err := a.exec(ctx, sqlThreadIdle, at, seq, threadID, turnID)
	return err
}

// revert marks every turn after the checkpoint's turn reverted, and their
// checkpoints.
func (a *Applier) revert(ctx context.Context, seq int64, e orchestration.CheckpointReverted) error {
	rows, err := a.q.QueryContext(ctx, stmt(a.dialect, sqlCheckpointOrdinal), e.ThreadID, e.GitRef)
	if err != nil {
		return err
	}
	var ordinal sql.NullInt64
	if rows.Next() {
		err = rows.Scan(&ordinal)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil || !ordinal.Valid {
		return err
	}
	if _, err := a.exec(ctx, sqlCheckpointsReverted, e.At, seq, e.ThreadID, e.ThreadID, ordinal.Int64); err != nil {
		return err
	}
	if _, err := a.exec(ctx, sqlTurnsReverted, seq, e.ThreadID, ordinal.Int64); err != nil {
		return err
	}
	_, err = a.exec(ctx, sqlThreadTouched, e.At, seq, e.ThreadID)
	return err
}
