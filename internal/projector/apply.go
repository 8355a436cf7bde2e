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

// Tables are the projection tables, in the order Rebuild and Verify go
// through them.
var Tables = []Table{
	{Name: "projection_projects", Key: "project_id"},
	{Name: "projection_threads", Key: "thread_id"},
	{Name: "projection_turns", Key: "turn_id"},
	{Name: "projection_messages", Key: "message_id"},
	{Name: "checkpoints", Key: "thread_id, turn_id"},
	{Name: "settings", Key: "key"},
}

// Table is a projection table.
type Table struct {
	Name string
	// Key is the table's primary key, which a row is found by when two
	// copies of the table are compared.
	Key string
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
// for an Apply of many messages or checkpoints, is lookUpTurns, which the
// caller may make ahead instead (TurnsRead).
type Applier struct {
	// Arrays says the engine takes Go slices as array parameters
	// (PostgreSQL): lookUpTurns then sends one array.
	Arrays bool
	// Log is the table the log is read from when a message completes:
	// events when empty; an Import that applies staged events sets its
	// staging table.
	Log string
	// JSONLog says the log's payload column holds only JSON
	// (PostgreSQL's json type), so a completion need not check that a
	// payload parses before it reads it (see DeltasOf).
	JSONLog bool
	// Turns, when not nil, is lookUpTurns read ahead by the caller (see
	// ReadTurns): the next Apply takes the turns from it instead of
	// reading them.
	Turns *TurnsRead

	q    sqlx.Querier
	d    Deferrer // q, when it defers; nil when not
	bind func(query string) string
	// seq and typ are the event being applied, for the error of a
	// deferred statement; typ is "" in Advance.
	seq int64
	typ string
	// turns, when not nil, are the turns (turn id → thread id) that
	// existed before Apply's events, among those its message.added and
	// checkpoint.created events name; started are the turns Apply's
	// turn.started events named so far (see lookUpTurns).
	turns, started map[string]string
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
	defer func() { a.turns, a.started, a.Turns = nil, nil, nil }()
	var de *DeferredError
	if r := a.Turns; r != nil {
		a.turns, a.started = make(map[string]string, len(r.turns)), map[string]string{}
		for i, turn := range r.turns {
			a.turns[turn] = r.threads[i]
		}
	} else if err := a.lookUpTurns(ctx, evs); err != nil {
		if errors.As(err, &de) { // a statement held before this Apply
			return err
		}
		return fmt.Errorf("apply %d: look up turns: %w", evs[0].Sequence, err)
	}
	for _, ev := range evs {
		if _, ok := ev.Event.(orchestration.MessageDelta); ok {
			continue // its text stays in the log (see sqlMessageCompleted)
		}
		a.seq, a.typ = ev.Sequence, ev.Event.EventType()
		if err := a.apply(ctx, ev.Sequence, ev.Event); err != nil {
			if errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("apply %d (%s): %w", ev.Sequence, ev.Event.EventType(), err)
		}
	}
	if len(evs) == 0 {
		return nil
	}
	return a.Advance(ctx, evs[len(evs)-1].Sequence)
}

// minLookUp is how many message.added and checkpoint.created events an
// Apply needs before lookUpTurns asks for their turns at once.
const minLookUp = 8

// lookUpTurns reads once which of the turns that evs' message.added and
// checkpoint.created events name exist, when there are at least minLookUp
// of them (worth a round trip on PostgreSQL against the two statements
// each event would cost the server; its pipelined append makes none, as
// it reads them ahead: see TurnsRead). An event whose turn
// neither existed then nor was started by an earlier event of evs (no
// event deletes a turn) then runs no statement at all; the others still
// check in SQL.
func (a *Applier) lookUpTurns(ctx context.Context, evs []Event) error {
	ids := namedTurns(evs, func(ev Event) orchestration.Event { return ev.Event })
	if ids == nil {
		return nil
	}
	a.turns, a.started = map[string]string{}, map[string]string{}
	if a.Arrays {
		return a.readTurns(ctx, turnLookUpArray, ids)
	}
	for len(ids) > 0 {
		k := min(len(ids), maxLookUp)
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

// namedTurns returns the turns that evs' message.added and
// checkpoint.created events name, each once, when there are at least
// minLookUp of them; else nil.
func namedTurns[E any](evs []E, event func(E) orchestration.Event) []string {
	var ids []string
	seen := map[string]bool{}
	for _, ev := range evs {
		var turn string
		switch e := event(ev).(type) {
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
	if len(ids) < minLookUp {
		return nil
	}
	return ids
}

// TurnsRead is lookUpTurns as a read that the caller sends ahead of
// Apply, on an engine with array parameters (PostgreSQL), in a round trip
// it makes anyway: PostgreSQL's pipelined append sends it with its head
// read, so that an Apply of many messages costs no round trip of its own
// (the look-up would cost two: one for the statements held back before
// it, one for itself). The read must run in Apply's transaction after
// every write to projection_turns before Apply's events (an append's
// runs under the append lock, which every writer of the projections
// takes), and its one row be scanned into Dest before Apply.
type TurnsRead struct {
	ids            []string
	turns, threads []string
}

// ReadTurns returns the read of the turns that Apply of evs would look
// up, or nil when it would not look any up.
func ReadTurns(evs []orchestration.Event) *TurnsRead {
	ids := namedTurns(evs, func(ev orchestration.Event) orchestration.Event { return ev })
	if ids == nil {
		return nil
	}
	return &TurnsRead{ids: ids}
}

// Query is the read, with ? placeholders: one row of two arrays, the
// turns found and their threads, both ordered by turn id (its primary
// key), so that the two line up.
func (r *TurnsRead) Query() string { return turnReadArrays }

// Args are the read's arguments.
func (r *TurnsRead) Args() []any { return []any{r.ids} }

// Dest is what the read's row is scanned into.
func (r *TurnsRead) Dest() []any { return []any{&r.turns, &r.threads} }

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
		err = a.do(ctx, a.completion(), seq, e.At, seq, e.MessageID, e.TurnID, e.ThreadID)
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

// completion is the UPDATE of a message.completed for a's log and
// engine: one of the two built once for the store's own log, or one
// built for another log (an Import's staging table).
func (a *Applier) completion() string {
	switch {
	case a.Log != "" && a.Log != "events":
		return messageCompleted(a.Log, !a.JSONLog)
	case a.JSONLog:
		return sqlMessageCompletedJSON
	}
	return sqlMessageCompleted
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
