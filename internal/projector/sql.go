package projector

import (
	"fmt"
	"strings"
)

// The statements of the projectors, written once with ? placeholders; the
// Applier passes each through its bind func. Created rows use ON CONFLICT DO
// NOTHING (the first one wins). A row that refers to a parent is inserted
// by an INSERT … SELECT … WHERE EXISTS (the parent), so a missing parent
// changes nothing and no statement has to be asked first; what follows an
// insert (a thread's counters, a turn's checkpoint) is guarded by the row
// that insert made, found by its last_sequence (or added_sequence), the
// event's own sequence. Single-row SELECT lists and plain VALUES lists take
// their parameter types from the columns they fill, on PostgreSQL too.
const (
	sqlAdvance = `UPDATE projection_state SET last_sequence = ?, updated_at = ?`

	sqlProjectCreated = `INSERT INTO projection_projects (project_id, name, workspace_root, created_at, updated_at, last_sequence)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO NOTHING`
	sqlProjectRenamed = `UPDATE projection_projects SET name = ?, updated_at = ?, last_sequence = ? WHERE project_id = ?`
	sqlProjectDeleted = `UPDATE projection_projects SET deleted_at = COALESCE(deleted_at, ?), updated_at = ?, last_sequence = ? WHERE project_id = ?`

	sqlThreadCreated = `INSERT INTO projection_threads (thread_id, project_id, title, model, status, turn_count, message_count, created_at, updated_at, last_sequence)
		SELECT ?, ?, ?, ?, 'idle', 0, 0, ?, ?, ? WHERE EXISTS (SELECT 1 FROM projection_projects WHERE project_id = ?)
		ON CONFLICT (thread_id) DO NOTHING`
	sqlThreadRenamed     = `UPDATE projection_threads SET title = ?, updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadArchived    = `UPDATE projection_threads SET archived_at = COALESCE(archived_at, ?), updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadDeleted     = `UPDATE projection_threads SET deleted_at = COALESCE(deleted_at, ?), updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadTurnStarted = `UPDATE projection_threads SET status = 'running', turn_count = turn_count + 1, latest_turn_id = ?, updated_at = ?, last_sequence = ?
		WHERE thread_id = ? AND EXISTS (SELECT 1 FROM projection_turns WHERE turn_id = ? AND last_sequence = ?)`
	sqlThreadIdle         = `UPDATE projection_threads SET status = 'idle', updated_at = ?, last_sequence = ? WHERE thread_id = ? AND status = 'running' AND latest_turn_id = ?`
	sqlThreadMessageAdded = `UPDATE projection_threads SET message_count = message_count + 1, updated_at = ?, last_sequence = ?
		WHERE thread_id = ? AND EXISTS (SELECT 1 FROM projection_messages WHERE message_id = ? AND added_sequence = ?)`
	sqlThreadReverted = `UPDATE projection_threads SET updated_at = ?, last_sequence = ?
		WHERE thread_id = ? AND EXISTS (` + checkpointTurns + `)`

	sqlTurnStarted = `INSERT INTO projection_turns (turn_id, thread_id, ordinal, status, started_at, last_sequence)
		SELECT ?, ?, (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM projection_turns WHERE thread_id = ?), 'running', ?, ?
		WHERE EXISTS (SELECT 1 FROM projection_threads WHERE thread_id = ?)
		ON CONFLICT (turn_id) DO NOTHING`
	sqlTurnEnded = `UPDATE projection_turns SET status = ?, error = ?, ended_at = ?, last_sequence = ?
		WHERE turn_id = ? AND thread_id = ? AND status = 'running'`
	sqlTurnCheckpoint = `UPDATE projection_turns SET checkpoint_ref = ?, last_sequence = ?
		WHERE turn_id = ? AND EXISTS (SELECT 1 FROM checkpoints WHERE thread_id = ? AND turn_id = ? AND last_sequence = ?)`
	sqlTurnsReverted = `UPDATE projection_turns SET status = 'reverted', last_sequence = ?
		WHERE thread_id = ? AND ordinal > (` + checkpointOrdinal + `) AND status <> 'reverted'`

	sqlMessageAdded = `INSERT INTO projection_messages (message_id, thread_id, turn_id, role, text, streaming, added_sequence, created_at, updated_at, last_sequence)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM projection_turns WHERE turn_id = ? AND thread_id = ?)
		ON CONFLICT (message_id) DO NOTHING`
	// A delta writes nothing: its text stays in the log, the event row it
	// already is, so its cost does not depend on the message's length.
	// The view projection_messages_live and the reader add a streaming
	// message's deltas from the log to its row, and completion folds them
	// into text once (messageCompleted).
	sqlCheckpointCreated = `INSERT INTO checkpoints (thread_id, turn_id, git_ref, message, created_at, last_sequence)
		SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM projection_turns WHERE turn_id = ? AND thread_id = ?)
		ON CONFLICT (thread_id, turn_id) DO NOTHING`
	// checkpointOrdinal is the ordinal of the last turn of a thread with a
	// checkpoint of a git ref, NULL when there is none (then ordinal > it
	// holds for no turn); checkpointTurns finds such a turn.
	checkpointOrdinal = `SELECT MAX(t.ordinal) FROM checkpoints c JOIN projection_turns t ON t.turn_id = c.turn_id
		WHERE c.thread_id = ? AND c.git_ref = ?`
	checkpointTurns = `SELECT 1 FROM checkpoints c JOIN projection_turns t ON t.turn_id = c.turn_id
		WHERE c.thread_id = ? AND c.git_ref = ?`
	sqlCheckpointsReverted = `UPDATE checkpoints SET reverted_at = ?, last_sequence = ?
		WHERE thread_id = ? AND reverted_at IS NULL
		AND turn_id IN (SELECT turn_id FROM projection_turns WHERE thread_id = ? AND ordinal > (` + checkpointOrdinal + `))`

	sqlSettingChanged = `INSERT INTO settings (key, value, updated_at, last_sequence) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, last_sequence = excluded.last_sequence`
)

// maxLookUp is the most turn ids of one lookUpTurns query.
const maxLookUp = 128

// lookUpSizes are the sizes of lookUpTurns' query on an engine without
// array parameters: n turn ids take the smallest that holds them, padded,
// so that a few shapes serve every batch and can be prepared.
var lookUpSizes = []int{1, 2, 4, 8, 16, 32, 64, maxLookUp}

// shapeSize returns the smallest of lookUpSizes that holds n (n <= maxLookUp).
func shapeSize(n int) int {
	for _, s := range lookUpSizes {
		if s >= n {
			return s
		}
	}
	panic(fmt.Sprintf("projector: %d turn ids in one statement", n))
}

// turnLookUps holds, by size, the query of lookUpTurns: the turns (and
// their threads) among n turn ids.
var turnLookUps = func() map[int]string {
	out := map[int]string{}
	for _, n := range lookUpSizes {
		out[n] = `SELECT turn_id, thread_id FROM projection_turns WHERE turn_id IN (` +
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
	}
	return out
}()

// turnLookUpArray is lookUpTurns' query for an engine with array
// parameters: the turns among an array of turn ids, one statement for any
// number of them.
const turnLookUpArray = `SELECT turn_id, thread_id FROM projection_turns WHERE turn_id = ANY(CAST(? AS text[]))`

// turnReadArrays is TurnsRead's query: lookUpTurns' on an engine with
// array parameters, as one row of two arrays, both in the order of the
// turn ids.
const turnReadArrays = `SELECT COALESCE(array_agg(turn_id ORDER BY turn_id), '{}'), COALESCE(array_agg(thread_id ORDER BY turn_id), '{}') FROM projection_turns WHERE turn_id = ANY(CAST(? AS text[]))`

// messageCompleted is the UPDATE that completes a streaming message,
// with log the table the log is read from (events, or an Import's
// staging table): its text becomes its stored text followed by the text
// of its deltas (DeltasOf), in sequence order, up to the
// message.completed (the log may already hold later events of the same
// append). checkJSON is DeltasOf's.
func messageCompleted(log string, checkJSON bool) string {
	return `UPDATE projection_messages SET text = text || COALESCE((SELECT string_agg(e.payload ->> 'delta', '' ORDER BY e.sequence)
		FROM ` + log + ` e WHERE ` + DeltasOf(log, "projection_messages", checkJSON) + ` AND e.sequence < ?), ''),
		streaming = false, updated_at = ?, last_sequence = ?
		WHERE message_id = ? AND turn_id = ? AND thread_id = ? AND streaming`
}

// DeltasOf is the condition on a row e of log that makes it a delta of
// the message m (a row of projection_messages): a message.delta of m's
// thread's stream, after its message.added, that names m and m's turn
// (the projector ignores one that names another turn; the stream names
// the thread, since Append and Import write every event to its own
// stream). The range of the stream's versions after the message.added's
// finds them in the index of (stream_id, stream_version); the sequence
// says the same and keeps the condition exact without it. With
// checkJSON, for an engine whose payload column may hold any text
// (SQLite: a damaged row), a payload that is not JSON names no message,
// as Rebuild leaves such a row out, instead of failing the statement.
// The view projection_messages_live (internal/migrategen) and
// projection.Reader read with it too.
func DeltasOf(log, m string, checkJSON bool) string {
	return DeltasAfter(log, m, "(SELECT a.stream_version FROM "+log+" a WHERE a.sequence = "+m+".added_sequence)", checkJSON)
}

// DeltasAfter is DeltasOf for the deltas after version after (an SQL
// expression) of the thread's stream, which is not before the message's
// message.added: a reader that has read the deltas up to a version reads
// on from it, and the index range begins there.
func DeltasAfter(log, m, after string, checkJSON bool) string {
	names := "e.payload ->> 'message_id' = " + m + ".message_id AND e.payload ->> 'turn_id' = " + m + ".turn_id"
	if checkJSON {
		names = "CASE WHEN json_valid(e.payload) THEN " + names + " END"
	}
	return strings.Join([]string{
		"e.stream_id = 'thread:' || " + m + ".thread_id",
		"e.stream_version > " + after,
		"e.sequence > " + m + ".added_sequence",
		"e.event_type = 'message.delta'",
		names,
	}, "\n      AND ")
}

// sqlMessageCompleted is messageCompleted of the store's own log, as an
// Applier runs it on an engine without JSONLog (SQLite), which prepares
// it (see Statements).
var sqlMessageCompleted = messageCompleted("events", true)

// sqlMessageCompletedJSON is messageCompleted of the store's own log on
// an engine with JSONLog (PostgreSQL).
var sqlMessageCompletedJSON = messageCompleted("events", false)

// statements lists every statement of the projectors.
var statements = func() []string {
	out := []string{sqlAdvance, sqlProjectCreated, sqlProjectRenamed, sqlProjectDeleted,
		sqlThreadCreated, sqlThreadRenamed, sqlThreadArchived, sqlThreadDeleted, sqlThreadTurnStarted,
		sqlThreadIdle, sqlThreadMessageAdded, sqlThreadReverted, sqlTurnStarted, sqlTurnEnded,
		sqlTurnCheckpoint, sqlTurnsReverted, sqlMessageAdded, sqlMessageCompleted,
		sqlCheckpointCreated, sqlCheckpointsReverted, sqlSettingChanged}
	for _, n := range lookUpSizes {
		out = append(out, turnLookUps[n])
	}
	return out
}()

// Statements returns every statement the projectors run without array
// parameters (see Applier.Arrays), each passed
// through bind (nil leaves them as they are), so that a store can prepare
// them once.
func Statements(bind func(query string) string) []string {
	if bind == nil {
		bind = unbound
	}
	out := make([]string, len(statements))
	for i, q := range statements {
		out[i] = bind(q)
	}
	return out
}

// unbound is the bind func that leaves ? placeholders as they are.
func unbound(query string) string { return query }
