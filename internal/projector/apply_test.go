package projector_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/projector"
	"github.com/peonhq/peon/internal/sqlx"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

var t0 = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// shell is how the sqlite3 shell shows at(n) as the store writes it.
func shell(n int) string { return at(n).Format("2006-01-02 15:04:05-07:00") }

// openDB returns a SQLite database migrated by the store, with its
// projection_state rows, and no events: the projector's own tables.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.db")
	store, err := persistence.Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, store.Close())
	db, err := sql.Open("sqlite", "file:"+path+"?_time_format=sqlite&_timezone=UTC")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// recorder is a querier that records the statements run through it.
type recorder struct {
	q     sqlx.Querier
	stmts []string
	args  [][]any
}

func (r *recorder) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	r.stmts, r.args = append(r.stmts, query), append(r.args, args)
	return r.q.ExecContext(ctx, query, args...)
}

func (r *recorder) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.stmts, r.args = append(r.stmts, query), append(r.args, args)
	return r.q.QueryContext(ctx, query, args...)
}

// matching returns the statements of r that contain s.
func (r *recorder) matching(s string) []int {
	var out []int
	for i, q := range r.stmts {
		if strings.Contains(q, s) {
			out = append(out, i)
		}
	}
	return out
}

// logged writes evs into db's log, the events table, as a store does
// before it applies them (a streaming message's deltas are read from
// there), and returns them. An event whose sequence is there already is
// left as it is.
func logged(t *testing.T, db *sql.DB, evs []projector.Event) []projector.Event {
	t.Helper()
	for _, ev := range evs {
		payload, err := orchestration.Encode(ev.Event)
		require.NoError(t, err)
		stream := ev.Event.StreamID()
		_, err = db.ExecContext(t.Context(), `INSERT INTO events (sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at)
			SELECT ?, ?, ?, COALESCE((SELECT MAX(stream_version) FROM events WHERE stream_id = ?), 0) + 1, ?, 1, ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM events WHERE sequence = ?)`,
			ev.Sequence, fmt.Sprint("event-", ev.Sequence), stream, stream, ev.Event.EventType(), string(payload), ev.Event.OccurredAt(), ev.Event.OccurredAt(), ev.Sequence)
		require.NoError(t, err)
	}
	return evs
}

// events numbers evs from sequence first on.
func events(first int64, evs ...orchestration.Event) []projector.Event {
	out := make([]projector.Event, len(evs))
	for i, e := range evs {
		out[i] = projector.Event{Sequence: first + int64(i), Event: e}
	}
	return out
}

// dump returns every row of table as the sqlite3 shell prints it (SELECT
// *, columns joined by |, NULL as an empty string), ordered by the
// table's key.
func dump(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	return dumpFrom(t, db, table, table)
}

// dumpFrom is dump of from, the table or a query with the same columns.
func dumpFrom(t *testing.T, db *sql.DB, table, from string) []string {
	t.Helper()
	key := ""
	for _, tb := range projector.Tables {
		if tb.Name == table {
			key = tb.Key
		}
	}
	if table == "projection_state" {
		key = "projector"
	}
	require.NotEmpty(t, key, "no key for %s", table)
	cols := strings.Split(columns(t, db, table), "|")
	texts := make([]string, len(cols))
	for i, c := range cols {
		texts[i] = "CAST(" + c + " AS TEXT)" // the stored text, not the driver's reading of it
	}
	rows, err := db.QueryContext(t.Context(), "SELECT "+strings.Join(texts, ", ")+" FROM "+from+" ORDER BY "+key+", 1")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = v.String
		}
		out = append(out, strings.Join(parts, "|"))
	}
	require.NoError(t, rows.Err())
	return out
}

// columns returns the column names of table, in order.
func columns(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table+" LIMIT 0")
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	return strings.Join(cols, "|")
}

// session is a run of every one of the 17 event types, from sequence 1.
func session() []projector.Event {
	return events(1,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at(1)},
		orchestration.ProjectCreated{ProjectID: "p2", Name: "docs", WorkspaceRoot: "/src/docs", At: at(2)},
		orchestration.ProjectRenamed{ProjectID: "p1", Name: "peon-store", At: at(3)},
		orchestration.ProjectDeleted{ProjectID: "p2", At: at(4)},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: at(5)},
		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p1", Title: "Spike", Model: "m", At: at(6)},
		orchestration.ThreadCreated{ThreadID: "t3", ProjectID: "p1", Title: "Gone", Model: "m", At: at(7)},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: at(8)},
		orchestration.ThreadArchived{ThreadID: "t2", At: at(9)},
		orchestration.ThreadDeleted{ThreadID: "t3", At: at(10)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(11)},                                                              // 11
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "red", At: at(12)}, // 12
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Role: orchestration.RoleAssistant, Streaming: true, At: at(13)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "Pinned ", At: at(14)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "it.", At: at(15)},
		orchestration.MessageCompleted{ThreadID: "t1", TurnID: "u1", MessageID: "m2", At: at(16)},
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u1", At: at(17)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "u1", GitRef: "aaa", Message: "one", At: at(18)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u2", At: at(19)},
		orchestration.TurnFailed{ThreadID: "t1", TurnID: "u2", Error: "timeout", At: at(20)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "u2", GitRef: "bbb", Message: "two", At: at(21)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u3", At: at(22)},
		orchestration.TurnInterrupted{ThreadID: "t1", TurnID: "u3", At: at(23)},
		orchestration.CheckpointReverted{ThreadID: "t1", GitRef: "aaa", At: at(24)},
		orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`"dark"`), At: at(25)},
		orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`{"a":1}`), At: at(26)},
		orchestration.SettingChanged{Key: "agent", Value: json.RawMessage(`"gpt-5"`), At: at(27)},
	)
}

func TestApplyWritesTheRowsTheShellSees(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	require.NoError(t, projector.New(db, nil).Apply(t.Context(), logged(t, db, session())))

	require.Equal(t, "project_id|last_sequence|name|workspace_root|created_at|updated_at|deleted_at",
		columns(t, db, "projection_projects"))
	require.Equal(t, []string{
		"p1|3|peon-store|/src/peon|" + shell(1) + "|" + shell(3) + "|",
		"p2|4|docs|/src/docs|" + shell(2) + "|" + shell(4) + "|" + shell(4),
	}, dump(t, db, "projection_projects"))

	require.Equal(t, "thread_id|last_sequence|project_id|title|model|status|turn_count|message_count|latest_turn_id|created_at|updated_at|archived_at|deleted_at",
		columns(t, db, "projection_threads"))
	require.Equal(t, []string{
		// u3 interrupted (23) set it idle; the revert (24) touched it last.
		"t1|24|p1|Fix the CI|gpt-5|idle|3|2|u3|" + shell(5) + "|" + shell(24) + "||",
		"t2|9|p1|Spike|m|idle|0|0||" + shell(6) + "|" + shell(9) + "|" + shell(9) + "|",
		"t3|10|p1|Gone|m|idle|0|0||" + shell(7) + "|" + shell(10) + "||" + shell(10),
	}, dump(t, db, "projection_threads"))

	require.Equal(t, "turn_id|last_sequence|thread_id|ordinal|status|error|checkpoint_ref|started_at|ended_at",
		columns(t, db, "projection_turns"))
	require.Equal(t, []string{
		"u1|18|t1|1|completed||aaa|" + shell(11) + "|" + shell(17),
		"u2|24|t1|2|reverted|timeout|bbb|" + shell(19) + "|" + shell(20),
		"u3|24|t1|3|reverted|||" + shell(22) + "|" + shell(23),
	}, dump(t, db, "projection_turns"))

	require.Equal(t, "message_id|last_sequence|thread_id|turn_id|role|text|streaming|added_sequence|created_at|updated_at",
		columns(t, db, "projection_messages"))
	require.Equal(t, []string{
		"m1|12|t1|u1|user|red|0|12|" + shell(12) + "|" + shell(12),
		"m2|16|t1|u1|assistant|Pinned it.|0|13|" + shell(13) + "|" + shell(16),
	}, dump(t, db, "projection_messages"))

	require.Equal(t, "id|last_sequence|thread_id|turn_id|git_ref|message|created_at|reverted_at",
		columns(t, db, "checkpoints"))
	require.Equal(t, []string{
		"1|18|t1|u1|aaa|one|" + shell(18) + "|",
		"2|24|t1|u2|bbb|two|" + shell(21) + "|" + shell(24),
	}, dump(t, db, "checkpoints"))

	require.Equal(t, "key|last_sequence|value|updated_at", columns(t, db, "settings"))
	require.Equal(t, []string{
		`agent|27|"gpt-5"|` + shell(27),
		`ui.theme|26|{"a":1}|` + shell(26),
	}, dump(t, db, "settings"))

	state := dump(t, db, "projection_state")
	require.Len(t, state, len(projector.Names))
	for i, name := range slices.Sorted(slices.Values(projector.Names)) {
		require.True(t, strings.HasPrefix(state[i], name+"|27|"), "projection_state: %s", state[i])
	}
}

func TestApplyIgnoresMissingParentsAndSecondCreations(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ap := projector.New(db, nil)
	ctx := t.Context()
	require.NoError(t, ap.Apply(ctx, logged(t, db, events(1,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "first", WorkspaceRoot: "/a", At: at(1)},
		orchestration.ProjectCreated{ProjectID: "p1", Name: "second", WorkspaceRoot: "/b", At: at(2)},
		orchestration.ThreadCreated{ThreadID: "t0", ProjectID: "nope", Title: "orphan", Model: "m", At: at(3)},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "first", Model: "m", At: at(4)},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "second", Model: "m", At: at(5)},
		orchestration.TurnStarted{ThreadID: "nope", TurnID: "u0", At: at(6)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(7)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(8)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "nope", MessageID: "m0", Role: orchestration.RoleUser, At: at(9)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "a", At: at(10)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "b", At: at(11)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Delta: "not streaming", At: at(12)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "nope", GitRef: "x", At: at(13)},
		orchestration.CheckpointReverted{ThreadID: "t1", GitRef: "unknown", At: at(14)},
		orchestration.ProjectRenamed{ProjectID: "nope", Name: "n", At: at(15)},
	))))
	require.Equal(t, []string{"p1|1|first|/a|" + shell(1) + "|" + shell(1) + "|"}, dump(t, db, "projection_projects"))
	require.Equal(t, []string{"t1|10|p1|first|m|running|1|1|u1|" + shell(4) + "|" + shell(10) + "||"}, dump(t, db, "projection_threads"))
	require.Equal(t, []string{"u1|7|t1|1|running|||" + shell(7) + "|"}, dump(t, db, "projection_turns"))
	require.Equal(t, []string{"m1|10|t1|u1|user|a|0|10|" + shell(10) + "|" + shell(10)}, dump(t, db, "projection_messages"))
	require.Empty(t, dump(t, db, "checkpoints"))
}

// live returns the text of message id as the view projection_messages_live
// shows it.
func live(t *testing.T, db *sql.DB, id string) string {
	t.Helper()
	var text string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT text FROM projection_messages_live WHERE message_id = ?", id).Scan(&text))
	return text
}

// liveRow returns the row of message id in projection_messages_live as
// the sqlite3 shell prints it.
func liveRow(t *testing.T, db *sql.DB, id string) string {
	t.Helper()
	var row string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT message_id || '|' || last_sequence || '|' || thread_id || '|' || turn_id || '|' || role || '|' || "+
		"text || '|' || streaming || '|' || added_sequence || '|' || created_at || '|' || updated_at FROM projection_messages_live WHERE message_id = ?", id).Scan(&row))
	return row
}

func TestDeltasStayInTheLog(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	require.NoError(t, projector.New(db, nil).Apply(ctx, logged(t, db, events(1,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(2)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at(3)},
		orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "a", Role: orchestration.RoleAssistant, Text: ">", Streaming: true, At: at(4)},
		orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "b", Role: orchestration.RoleAssistant, Streaming: true, At: at(5)},
	))))
	threadBefore := dump(t, db, "projection_threads")
	messagesBefore := dump(t, db, "projection_messages")

	t.Run("ADeltaWritesNothing", func(t *testing.T) {
		rec := &recorder{q: db}
		require.NoError(t, projector.New(rec, nil).Apply(ctx, logged(t, db, events(6,
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "one ", At: at(6)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "two ", At: at(7)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "three", At: at(8)},
		))))
		require.Len(t, rec.stmts, 1, "only the advance: %q", rec.stmts)
		require.Len(t, rec.matching("UPDATE projection_state"), 1)
		// The rows wait for the completion; the view has the whole text
		// and the last delta's at and sequence.
		require.Equal(t, messagesBefore, dump(t, db, "projection_messages"), "a delta rewrote its message")
		require.Equal(t, "a|8|t|u|assistant|>one two three|1|4|"+shell(4)+"|"+shell(8), liveRow(t, db, "a"))
		require.Equal(t, threadBefore, dump(t, db, "projection_threads"), "a delta rewrote its thread")
	})

	t.Run("InterleavedDeltas", func(t *testing.T) {
		rec := &recorder{q: db}
		require.NoError(t, projector.New(rec, nil).Apply(ctx, logged(t, db, events(9,
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "A", At: at(9)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "b", Delta: "B", At: at(10)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "A", At: at(11)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "b", Delta: "B", At: at(12)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "a", At: at(13)},
		))))
		require.Len(t, rec.stmts, 1, "statements: %q", rec.stmts)
		require.Equal(t, "a|13|t|u|assistant|>one two threeAAa|1|4|"+shell(4)+"|"+shell(13), liveRow(t, db, "a"))
		require.Equal(t, "b|12|t|u|assistant|BB|1|5|"+shell(5)+"|"+shell(12), liveRow(t, db, "b"))
	})

	t.Run("CompletionFoldsTheDeltas", func(t *testing.T) {
		require.NoError(t, projector.New(db, nil).Apply(ctx, logged(t, db, events(14,
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "!", At: at(14)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "nope", MessageID: "b", Delta: "wrong turn", At: at(15)},
			orchestration.MessageDelta{ThreadID: "t2", TurnID: "u", MessageID: "a", Delta: "wrong thread", At: at(16)},
			orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "a", At: at(17)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "a", Delta: "late", At: at(18)},
			orchestration.MessageCompleted{ThreadID: "t", TurnID: "nope", MessageID: "b", At: at(19)},
		))))
		msgs := dump(t, db, "projection_messages")
		require.Equal(t, []string{
			"a|17|t|u|assistant|>one two threeAAa!|0|4|" + shell(4) + "|" + shell(17),
			"b|5|t|u|assistant||1|5|" + shell(5) + "|" + shell(5),
		}, msgs)
		// b, still streaming, shows its own deltas only, and a completion
		// for another turn left it so; a shows its folded text.
		require.Equal(t, "a|17|t|u|assistant|>one two threeAAa!|0|4|"+shell(4)+"|"+shell(17), liveRow(t, db, "a"))
		require.Equal(t, "b|12|t|u|assistant|BB|1|5|"+shell(5)+"|"+shell(12), liveRow(t, db, "b"))
	})

	t.Run("ADeltaBeforeItsMessageIsIgnored", func(t *testing.T) {
		require.NoError(t, projector.New(db, nil).Apply(ctx, logged(t, db, events(20,
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "c", Delta: "early", At: at(20)},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "c", Role: orchestration.RoleAssistant, Streaming: true, At: at(21)},
			orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "c", Delta: "on time", At: at(22)},
		))))
		require.Equal(t, "on time", live(t, db, "c"))
		require.NoError(t, projector.New(db, nil).Apply(ctx, logged(t, db, events(23,
			orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: "c", At: at(23)},
		))))
		require.Equal(t, "on time", live(t, db, "c"))
		require.Contains(t, dump(t, db, "projection_messages"), "c|23|t|u|assistant|on time|0|21|"+shell(21)+"|"+shell(23))
	})
}

// liveRows returns every row of projection_messages_live as liveRow
// prints it, by message id.
func liveRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var out []string
	for _, m := range dump(t, db, "projection_messages") {
		out = append(out, liveRow(t, db, strings.SplitN(m, "|", 2)[0]))
	}
	return out
}

func TestManyDeltasBatchedOrNot(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Many deltas over many messages, some of which complete, in one
	// Apply against the same events one at a time.
	var evs []orchestration.Event
	evs = append(evs,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(2)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: at(3)})
	for m := range 70 {
		evs = append(evs, orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: fmt.Sprint("m", m), Role: orchestration.RoleAssistant, Streaming: true, At: at(4)})
	}
	for d := range 300 {
		evs = append(evs, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: fmt.Sprint("m", d%70), Delta: fmt.Sprint(d, " "), At: at(5 + d)})
		if d >= 140 && d < 150 { // m0 to m9 complete after their third delta
			evs = append(evs, orchestration.MessageCompleted{ThreadID: "t", TurnID: "u", MessageID: fmt.Sprint("m", d%70), At: at(5 + d)})
		}
	}
	all := events(1, evs...)
	batched, single := openDB(t), openDB(t)
	require.NoError(t, projector.New(batched, nil).Apply(ctx, logged(t, batched, all)))
	for _, ev := range all {
		require.NoError(t, projector.New(single, nil).Apply(ctx, logged(t, single, []projector.Event{ev})))
	}
	for _, tb := range projector.Tables {
		require.Equal(t, dump(t, single, tb.Name), dump(t, batched, tb.Name), tb.Name)
	}
	require.Equal(t, liveRows(t, single), liveRows(t, batched))
	require.Equal(t, "20 90 160 230 ", live(t, batched, "m20"), "still streaming")
	require.Equal(t, "0 70 140 ", live(t, batched, "m0"), "completed after its third delta")
	require.Contains(t, dump(t, batched, "projection_messages")[0], "|0 70 140 |0|", "m0's text is folded")
}

func TestEveryStatementGoesThroughBind(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	const mark = " -- bound"
	bind := func(q string) string { return q + mark }
	rec := &recorder{q: db}
	require.NoError(t, projector.New(rec, bind).Apply(t.Context(), logged(t, db, session())))
	require.NotEmpty(t, rec.stmts)
	prepared := projector.Statements(bind)
	for _, q := range rec.stmts {
		require.True(t, strings.HasSuffix(q, mark), "not bound: %s", q)
		require.Contains(t, prepared, q, "Statements leaves out a statement the Applier runs")
	}
	for i, q := range projector.Statements(nil) {
		require.Equal(t, prepared[i], q+mark)
		require.NotContains(t, q, mark)
	}
	// The run touched every table, so it is a test of them all.
	for _, tb := range projector.Tables {
		require.NotEmpty(t, rec.matching(tb.Name), "no statement on %s", tb.Name)
	}
}

func TestAdvanceMovesEveryProjector(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	ctx := t.Context()
	ap := projector.New(db, nil)
	require.NoError(t, ap.Apply(ctx, nil))
	for _, row := range dump(t, db, "projection_state") {
		require.Contains(t, row, "|0|", "Apply of no events moved a projector: %s", row)
	}
	require.NoError(t, ap.Advance(ctx, 42))
	state := dump(t, db, "projection_state")
	require.Len(t, state, len(projector.Names))
	for _, row := range state {
		require.Contains(t, row, "|42|")
	}
}

// deferrer is a projector.Deferrer that holds statements back until the
// next statement run through it, or flush, and can fail the held ones.
type deferrer struct {
	q        sqlx.Querier
	held     []heldStmt
	deferred int
	fail     error  // the error of every held statement, when set
	failOn   string // when set, fail only the statements that hold it
}

type heldStmt struct {
	what, query string
	args        []any
}

func (d *deferrer) Defer(what, query string, args ...any) {
	d.held = append(d.held, heldStmt{what, query, args})
	d.deferred++
}

func (d *deferrer) flush(ctx context.Context) error {
	held := d.held
	d.held = nil
	for _, h := range held {
		if d.fail != nil && strings.Contains(h.query, d.failOn) {
			return &projector.DeferredError{What: h.what, Err: d.fail}
		}
		if _, err := d.q.ExecContext(ctx, h.query, h.args...); err != nil {
			return &projector.DeferredError{What: h.what, Err: err}
		}
	}
	return nil
}

func (d *deferrer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := d.flush(ctx); err != nil {
		return nil, err
	}
	return d.q.ExecContext(ctx, query, args...)
}

func (d *deferrer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := d.flush(ctx); err != nil {
		return nil, err
	}
	return d.q.QueryContext(ctx, query, args...)
}

var _ projector.Deferrer = (*deferrer)(nil)

func TestDeferredStatementsGiveTheSameRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	plain, held := openDB(t), openDB(t)
	require.NoError(t, projector.New(plain, nil).Apply(ctx, logged(t, plain, session())))
	d := &deferrer{q: held}
	require.NoError(t, projector.New(d, nil).Apply(ctx, logged(t, held, session())))
	require.NotZero(t, d.deferred, "the Applier deferred nothing")
	require.NotEmpty(t, d.held, "the advance is not left for the COMMIT")
	require.NoError(t, d.flush(ctx))
	for _, tb := range projector.Tables {
		require.Equal(t, dump(t, plain, tb.Name), dump(t, held, tb.Name), tb.Name)
	}
}

func TestDeferredErrorNamesItsOwnEvent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := &deferrer{q: openDB(t), fail: errors.New("disk full"), failOn: "INSERT INTO projection_threads"}
	require.NoError(t, projector.New(d, nil).Apply(ctx, events(1,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(2)},
		orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: at(3)},
	)))
	err := d.flush(ctx)
	var de *projector.DeferredError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "apply 2 (thread.created): disk full", err.Error())
}

func TestNoStatementWaitsForAnother(t *testing.T) {
	t.Parallel()
	// Parent checks sit inside the statements: with a Deferrer every
	// statement of a whole session, every event type, waits for the
	// COMMIT (on PostgreSQL: one round trip).
	d := &deferrer{q: openDB(t)}
	require.NoError(t, projector.New(d, nil).Apply(t.Context(), session()))
	require.Equal(t, d.deferred, len(d.held), "statements were sent before the commit")
}

func TestDeferredStatementsWaitForTheCommit(t *testing.T) {
	t.Parallel()
	d := &deferrer{q: openDB(t), fail: errors.New("lost")}
	err := projector.New(d, nil).Apply(t.Context(), events(5,
		orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: at(5)},
	))
	require.NoError(t, err, "a held statement fails only when it is sent")
	require.Len(t, d.held, 2, "the upsert and the advance are left for the COMMIT")
	require.ErrorContains(t, d.flush(t.Context()), "apply 5 (setting.changed): lost")
}

func ExampleStatements() {
	for _, q := range projector.Statements(sqlx.Dollar)[:2] {
		fmt.Println(strings.Join(strings.Fields(q), " "))
	}
	// Output:
	// UPDATE projection_state SET last_sequence = $1, updated_at = $2
	// INSERT INTO projection_projects (project_id, name, workspace_root, created_at, updated_at, last_sequence) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id) DO NOTHING
}

func TestBatchLooksUpTurnsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	setup := events(1,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "t", Model: "m", At: at(2)},
		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "t", Model: "m", At: at(3)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "old", At: at(4)},
	)
	var evs []orchestration.Event
	for i := range 10 {
		evs = append(evs, orchestration.MessageAdded{ThreadID: "t", TurnID: fmt.Sprint("gone", i), MessageID: fmt.Sprint("g", i), Role: orchestration.RoleUser, At: at(5)})
	}
	evs = append(evs,
		orchestration.MessageAdded{ThreadID: "t", TurnID: "old", MessageID: "o", Role: orchestration.RoleUser, Text: "old turn", At: at(6)},
		orchestration.MessageAdded{ThreadID: "t2", TurnID: "old", MessageID: "w", Role: orchestration.RoleUser, Text: "wrong thread", At: at(6)},
		orchestration.MessageAdded{ThreadID: "t", TurnID: "new", MessageID: "early", Role: orchestration.RoleUser, Text: "before its turn", At: at(7)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "new", At: at(8)},
		orchestration.MessageAdded{ThreadID: "t", TurnID: "new", MessageID: "n", Role: orchestration.RoleUser, Text: "new turn", At: at(9)},
		orchestration.CheckpointCreated{ThreadID: "t", TurnID: "new", GitRef: "r", Message: "c", At: at(10)},
		orchestration.CheckpointCreated{ThreadID: "t", TurnID: "gone1", GitRef: "r", Message: "c", At: at(11)},
		orchestration.TurnStarted{ThreadID: "nope", TurnID: "orphan", At: at(12)},
		orchestration.MessageAdded{ThreadID: "nope", TurnID: "orphan", MessageID: "x", Role: orchestration.RoleUser, At: at(13)},
	)
	batch := events(5, evs...)
	batched, single := openDB(t), openDB(t)
	for _, db := range []*sql.DB{batched, single} {
		require.NoError(t, projector.New(db, nil).Apply(ctx, logged(t, db, setup)))
	}
	rec := &recorder{q: batched}
	require.NoError(t, projector.New(rec, nil).Apply(ctx, logged(t, batched, batch)))
	for _, ev := range batch {
		require.NoError(t, projector.New(single, nil).Apply(ctx, logged(t, single, []projector.Event{ev})))
	}
	for _, tb := range projector.Tables {
		require.Equal(t, dump(t, single, tb.Name), dump(t, batched, tb.Name), tb.Name)
	}
	require.Len(t, rec.matching("SELECT turn_id, thread_id FROM projection_turns"), 1, "one look-up: %q", rec.stmts)
	require.Len(t, rec.matching("INSERT INTO projection_messages"), 3, "only messages whose turn may exist: o, n, x")
	msgs := dump(t, batched, "projection_messages")
	require.Len(t, msgs, 2)
	require.Contains(t, msgs[0], "new turn")
	require.Contains(t, msgs[1], "old turn")
}
