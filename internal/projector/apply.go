package projector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peonhq/peon/internal/sqlx"
	"github.com/peonhq/peon/orchestration"
)

// Names are the projectors, one per table, each with a row in
// projection_state. They advance together: every append moves all of them
// to its last sequence.
var Names = []string{"projects", "threads", "turns", "messages", "checkpoints", "settings"}

// Tables are the projection tables, in the order Rebuild and Verify go
// through them.
var Tables = []Table{
	{Name: "projection_projects", Key: "project_id"},
	{Name: "projection_threads", Key: "thread_id"},
	{Name: "projection_turns", Key: "turn_id"},
	{Name: "projection_messages", Key: "message_id"},
	{Name: "projection_message_chunks", Key: "message_id", compare: chunksCompared},
	{Name: "checkpoints", Key: "thread_id, turn_id"},
	{Name: "settings", Key: "key"},
}

// Table is a projection table.
type Table struct {
	Name string
	// Key is what a row of the table is found by when two copies of it are
	// compared: its primary key, or the key of Compared's rows.
	Key string
	// compare, when not empty, is the query Compared returns, with
	// "{table}" where the table's name goes.
	compare string
}

// Compared returns what Verify compares of the table named name (the
// table itself or a copy of it): the table, or, for a table whose rows
// depend on how its events were batched, a query of what they mean, with
// the same columns as the table and one row per Key.
func (t Table) Compared(name string) string {
	if t.compare == "" {
		return name
	}
	return "(" + strings.ReplaceAll(t.compare, "{table}", name) + ")"
}

// Event is an event with its place in the log.
type Event struct {
	Sequence int64
	Event    orchestration.Event
}

// Applier applies events to the projection tables through the querier
// given to New, which carries the append's transaction.
//
// No statement is asked a question first: parent checks sit inside the
// statements. When the querier is a Deferrer, every statement is held
// back and sent with the COMMIT (or the next statement that reads), in
// the same order. When it is not, an INSERT's row count spares the
// statement that would follow it when it inserted nothing. The one read,
// for an Apply of many messages or checkpoints, is lookUpTurns.
type Applier struct {
	// Arrays says the engine takes Go slices as array parameters
	// (PostgreSQL): held deltas are then written by chunkUnnest.
	Arrays bool

	q    sqlx.Querier
	d    Deferrer // q, when it defers; nil when not
	bind func(query string) string
	// seq and typ are the event being applied, for the error of a
	// deferred statement; typ is "" in Advance.
	seq int64
	typ string
	// held are the chunk rows of the deltas not yet written, in the
	// order of their first delta, and heldAt where each message's is in
	// held (see hold).
	held   []heldChunk
	heldAt map[chunkKey]int
	// turns, when not nil, are the turns (turn id → thread id) that
	// existed before Apply's events, among those its message.added and
	// checkpoint.created events name; started are the turns Apply's
	// turn.started events named so far (see lookUpTurns).
	turns, started map[string]string
}

// heldChunk is the chunk row of the held deltas of one message: their
// text in order, the sequence of the first (for errors), and the sequence
// and at of the last, which the row takes. The row stands for all of them:
// the view and the reader take a message's text from its chunks in
// sequence order, and its last_sequence and updated_at from its last one,
// which is what one row per delta gives too.
type heldChunk struct {
	chunkKey
	first, seq int64
	at         time.Time
	text       []byte
}

// chunkKey is what deltas share to be one chunk row: the message and the
// turn and thread they name (a delta naming another turn or thread than
// its message's is ignored, so it cannot join their row).
type chunkKey struct{ message, turn, thread string }

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

// insertThen runs insert, then then, which is guarded in SQL by the row
// insert makes: a Deferrer holds both back; otherwise then is not run when
// insert changed no row.
func (a *Applier) insertThen(ctx context.Context, insert string, args []any, then string, thenArgs ...any) error {
	if a.d != nil {
		if err := a.do(ctx, insert, args...); err != nil {
			return err
		}
		return a.do(ctx, then, thenArgs...)
	}
	res, err := a.q.ExecContext(ctx, a.bind(insert), args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return a.do(ctx, then, thenArgs...)
}

// Apply applies evs, in order, and moves every projector to the last one.
// It fails only on a database error: a structurally valid event that
// refers to a missing row changes nothing. The error of a deferred
// statement, a *DeferredError, names its own event.
func (a *Applier) Apply(ctx context.Context, evs []Event) error {
	defer func() { a.turns, a.started, a.held = nil, nil, a.held[:0]; clear(a.heldAt) }()
	var de *DeferredError
	if err := a.lookUpTurns(ctx, evs); err != nil {
		if errors.As(err, &de) { // a statement held before this Apply
			return err
		}
		return fmt.Errorf("apply %d: look up turns: %w", evs[0].Sequence, err)
	}
	for _, ev := range evs {
		switch e := ev.Event.(type) {
		case orchestration.MessageDelta:
			if err := a.hold(ctx, ev.Sequence, e); err != nil {
				return err
			}
			continue
		case orchestration.MessageAdded, orchestration.MessageCompleted:
			// The held deltas came first: they see the message as it
			// was before this event.
			if err := a.writeHeld(ctx); err != nil {
				return err
			}
		}
		a.seq, a.typ = ev.Sequence, ev.Event.EventType()
		if err := a.apply(ctx, ev.Sequence, ev.Event); err != nil {
			if errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("apply %d (%s): %w", ev.Sequence, ev.Event.EventType(), err)
		}
	}
	if err := a.writeHeld(ctx); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	return a.Advance(ctx, evs[len(evs)-1].Sequence)
}

// hold keeps a delta to write later with the deltas around it. The held
// deltas of one message (in one turn and thread) are one chunk row, and
// up to maxHeld such rows are one multi-row INSERT, whatever the messages
// they go to. Only message.added and message.completed change which
// deltas count, and they write the held ones first.
func (a *Applier) hold(ctx context.Context, seq int64, e orchestration.MessageDelta) error {
	k := chunkKey{e.MessageID, e.TurnID, e.ThreadID}
	if i, ok := a.heldAt[k]; ok {
		c := &a.held[i]
		c.text = append(c.text, e.Delta...)
		c.seq, c.at = seq, e.At
		return nil
	}
	if len(a.held) == maxHeld {
		if err := a.writeHeld(ctx); err != nil {
			return err
		}
	}
	if a.heldAt == nil {
		a.heldAt = map[chunkKey]int{}
	}
	a.heldAt[k] = len(a.held)
	a.held = append(a.held, heldChunk{chunkKey: k, first: seq, seq: seq, at: e.At, text: []byte(e.Delta)})
	return nil
}

// writeHeld writes the held deltas as chunk rows.
func (a *Applier) writeHeld(ctx context.Context) error {
	if len(a.held) == 0 {
		return nil
	}
	held := a.held
	a.held = a.held[:0]
	clear(a.heldAt)
	a.seq, a.typ = held[0].first, orchestration.MessageDelta{}.EventType()
	if err := a.writeChunks(ctx, held); err != nil {
		return fmt.Errorf("apply %d (%s): %w", a.seq, a.typ, err)
	}
	return nil
}

func (a *Applier) writeChunks(ctx context.Context, held []heldChunk) error {
	if a.Arrays {
		seqs, msgs, texts := make([]int64, len(held)), make([]string, len(held)), make([]string, len(held))
		ats, turns, threads := make([]time.Time, len(held)), make([]string, len(held)), make([]string, len(held))
		for i, h := range held {
			seqs[i], msgs[i], texts[i], ats[i], turns[i], threads[i] = h.seq, h.message, string(h.text), h.at, h.turn, h.thread
		}
		return a.do(ctx, chunkUnnest, seqs, msgs, texts, ats, turns, threads)
	}
	n := shapeSize(len(held))
	args := make([]any, 0, 6*n)
	for _, h := range held {
		args = append(args, h.seq, h.message, string(h.text), h.at, h.turn, h.thread)
	}
	for range n - len(held) {
		args = append(args, nil, nil, nil, nil, nil, nil)
	}
	return a.do(ctx, chunkInserts[n], args...)
}

// minLookUp is how many message.added and checkpoint.created events an
// Apply needs before lookUpTurns asks for their turns at once.
const minLookUp = 8

// lookUpTurns reads once which of the turns that evs' message.added and
// checkpoint.created events name exist, when there are at least minLookUp
// of them (on PostgreSQL one round trip, worth it against the two
// statements each event would cost the server). An event whose turn
// neither existed then nor was started by an earlier event of evs (no
// event deletes a turn) then runs no statement at all; the others still
// check in SQL.
func (a *Applier) lookUpTurns(ctx context.Context, evs []Event) error {
	var ids []string
	seen := map[string]bool{}
	for _, ev := range evs {
		var turn string
		switch e := ev.Event.(type) {
		case orchestration.MessageAdded:
			turn = e.TurnID
		case orchestration.CheckpointCreated:
			turn = e.TurnID
		default:
			continue
		}
		if !seen[turn] {
			seen[turn] = true
			ids = append(ids, turn)
		}
	}
	if len(seen) < minLookUp {
		return nil
	}
	a.turns, a.started = map[string]string{}, map[string]string{}
	if a.Arrays {
		return a.readTurns(ctx, turnLookUpArray, ids)
	}
	for len(ids) > 0 {
		k := min(len(ids), maxHeld)
		n := shapeSize(k)
		args := make([]any, n)
		for i := range n {
			args[i] = ids[min(i, k-1)]
		}
		if err := a.readTurns(ctx, turnLookUps[n], args...); err != nil {
			return err
		}
		ids = ids[k:]
	}
	return nil
}

// readTurns adds to a.turns the turns (turn id → thread id) that query
// returns.
func (a *Applier) readTurns(ctx context.Context, query string, args ...any) error {
	rows, err := a.q.QueryContext(ctx, a.bind(query), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var turn, thread string
		if err := rows.Scan(&turn, &thread); err != nil {
			rows.Close()
			return err
		}
		a.turns[turn] = thread
	}
	return rows.Close()
}

// mayHaveTurn reports whether turn of thread may exist: always, unless
// lookUpTurns found it missing before Apply's events and no turn.started
// of them has named it since.
func (a *Applier) mayHaveTurn(turn, thread string) bool {
	if a.turns == nil {
		return true
	}
	if th, ok := a.turns[turn]; ok {
		return th == thread
	}
	_, ok := a.started[turn]
	return ok
}

// Advance records that every projector has applied the log up to seq.
func (a *Applier) Advance(ctx context.Context, seq int64) error {
	a.seq, a.typ = seq, ""
	return a.do(ctx, sqlAdvance, seq, time.Now().UTC().Truncate(time.Microsecond))
}

// apply applies one event other than a delta.
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
		err = a.do(ctx, sqlThreadCreated, e.ThreadID, e.ProjectID, e.Title, e.Model, e.At, e.At, seq, e.ProjectID)
	case orchestration.ThreadRenamed:
		err = a.do(ctx, sqlThreadRenamed, e.Title, e.At, seq, e.ThreadID)
	case orchestration.ThreadArchived:
		err = a.do(ctx, sqlThreadArchived, e.At, e.At, seq, e.ThreadID)
	case orchestration.ThreadDeleted:
		err = a.do(ctx, sqlThreadDeleted, e.At, e.At, seq, e.ThreadID)
	case orchestration.TurnStarted:
		if a.started != nil {
			a.started[e.TurnID] = e.ThreadID
		}
		err = a.insertThen(ctx, sqlTurnStarted, []any{e.TurnID, e.ThreadID, e.ThreadID, e.At, seq, e.ThreadID},
			sqlThreadTurnStarted, e.TurnID, e.At, seq, e.ThreadID, e.TurnID, seq)
	case orchestration.TurnCompleted:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "completed", nil, e.At)
	case orchestration.TurnFailed:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "failed", e.Error, e.At)
	case orchestration.TurnInterrupted:
		err = a.endTurn(ctx, seq, e.ThreadID, e.TurnID, "interrupted", nil, e.At)
	case orchestration.MessageAdded:
		if !a.mayHaveTurn(e.TurnID, e.ThreadID) {
			return nil
		}
		err = a.insertThen(ctx, sqlMessageAdded, []any{e.MessageID, e.ThreadID, e.TurnID, string(e.Role), e.Text, e.Streaming, seq, e.At, e.At, seq, e.TurnID, e.ThreadID},
			sqlThreadMessageAdded, e.At, seq, e.ThreadID, e.MessageID, seq)
	case orchestration.MessageCompleted:
		err = a.insertThen(ctx, sqlMessageCompleted, []any{e.At, seq, e.MessageID, e.TurnID, e.ThreadID},
			sqlChunksFolded, e.MessageID, e.MessageID)
	case orchestration.CheckpointCreated:
		if !a.mayHaveTurn(e.TurnID, e.ThreadID) {
			return nil
		}
		err = a.insertThen(ctx, sqlCheckpointCreated, []any{e.ThreadID, e.TurnID, e.GitRef, e.Message, e.At, seq, e.TurnID, e.ThreadID},
			sqlTurnCheckpoint, e.GitRef, seq, e.TurnID, e.ThreadID, e.TurnID, seq)
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
// checkpoints, and touches the thread; nothing when the thread has no
// checkpoint of that ref.
func (a *Applier) revert(ctx context.Context, seq int64, e orchestration.CheckpointReverted) error {
	if err := a.do(ctx, sqlCheckpointsReverted, e.At, seq, e.ThreadID, e.ThreadID, e.ThreadID, e.GitRef); err != nil {
		return err
	}
	if err := a.do(ctx, sqlTurnsReverted, seq, e.ThreadID, e.ThreadID, e.GitRef); err != nil {
		return err
	}
	return a.do(ctx, sqlThreadReverted, e.At, seq, e.ThreadID, e.ThreadID, e.GitRef)
}
