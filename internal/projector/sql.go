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
	// A delta never touches its message's row: it is a chunk row (see
	// chunkInsert), which the view and the reader add to the row.
	// Completion folds the chunks into text, in sequence order, once;
	// sqlChunksFolded then deletes them. Both find them by a range of the
	// chunks' key, the sequences after the message's added_sequence.
	sqlMessageCompleted = `UPDATE projection_messages SET text = text || COALESCE((SELECT string_agg(c.text, '' ORDER BY c.sequence)
		FROM projection_message_chunks c WHERE c.sequence > projection_messages.added_sequence
		AND c.message_id = projection_messages.message_id), ''),
		streaming = false, updated_at = ?, last_sequence = ?
		WHERE message_id = ? AND turn_id = ? AND thread_id = ? AND streaming`
	sqlChunksFolded = `DELETE FROM projection_message_chunks
		WHERE sequence > (SELECT added_sequence FROM projection_messages WHERE message_id = ? AND NOT streaming) AND message_id = ?`

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

// maxHeld is how many deltas the Applier holds before it writes them: the
// most rows of one chunk INSERT.
const maxHeld = 128

// heldSizes are the row counts of the chunk INSERT shapes: n held deltas
// take the smallest that holds them, padded, so that a few shapes serve
// every batch and can be prepared.
var heldSizes = []int{1, 2, 4, 8, 16, 32, 64, maxHeld}

// shapeSize returns the smallest of heldSizes that holds n (n <= maxHeld).
func shapeSize(n int) int {
	for _, s := range heldSizes {
		if s >= n {
			return s
		}
	}
	panic(fmt.Sprintf("projector: %d rows in one statement", n))
}

// chunkInserts holds the chunk INSERT shapes by size.
var chunkInserts = func() map[int]string {
	out := map[int]string{}
	for _, n := range heldSizes {
		out[n] = chunkInsert(n)
	}
	return out
}()

// turnLookUps holds, by size, the query of lookUpTurns: the turns (and
// their threads) among n turn ids.
var turnLookUps = func() map[int]string {
	out := map[int]string{}
	for _, n := range heldSizes {
		out[n] = `SELECT turn_id, thread_id FROM projection_turns WHERE turn_id IN (` +
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
	}
	return out
}()

// turnLookUpArray is lookUpTurns' query for an engine with array
// parameters: the turns among an array of turn ids, one statement for any
// number of them.
const turnLookUpArray = `SELECT turn_id, thread_id FROM projection_turns WHERE turn_id = ANY(CAST(? AS text[]))`

// chunkInsert is the INSERT of n chunk rows, each (sequence, message_id,
// text, updated_at, turn_id, thread_id), of which only those whose message
// is streaming in that turn and thread are kept; a padding row of NULLs
// matches no message. It is SQLite's (PostgreSQL takes chunkUnnest, whose
// arrays carry the parameters' types). The rows are a VALUES list, not a
// SELECT that names the table: SQLite copies the rows of an INSERT that
// reads its own table into a temporary table first.
func chunkInsert(n int) string {
	rows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", n), ", ")
	return `INSERT INTO projection_message_chunks (sequence, message_id, text, updated_at)
		SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES ` + rows + `) v
		WHERE EXISTS (SELECT 1 FROM projection_messages m
			WHERE m.message_id = v.column2 AND m.turn_id = v.column5 AND m.thread_id = v.column6 AND m.streaming)`
}

// chunksCompared is what Verify compares of the chunk table: per
// message, its chunks' text in sequence order and its last chunk's
// sequence and at. That is what the chunks mean (the view and the reader
// read just that), and it does not depend on how the deltas were batched
// into rows (see Applier.hold), which a rebuild does its own way.
const chunksCompared = `SELECT g.message_id, g.sequence, g.text, c.updated_at FROM (
	SELECT message_id, MAX(sequence) AS sequence, string_agg(text, '' ORDER BY sequence) AS text FROM {table} GROUP BY message_id
) g JOIN {table} c ON c.sequence = g.sequence`

// chunkUnnest is the INSERT of the chunk rows of six arrays of as many
// elements, element i of each making row i (sequence, message_id, text,
// updated_at, turn_id, thread_id), for an engine with array parameters
// (PostgreSQL): one statement and six parameters whatever the number of
// rows, kept as chunkInsert keeps them.
const chunkUnnest = `INSERT INTO projection_message_chunks (sequence, message_id, text, updated_at)
	SELECT v.sequence, v.message_id, v.text, v.updated_at
	FROM unnest(CAST(? AS bigint[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS timestamptz[]), CAST(? AS text[]), CAST(? AS text[]))
		AS v(sequence, message_id, text, updated_at, turn_id, thread_id)
	WHERE EXISTS (SELECT 1 FROM projection_messages m
		WHERE m.message_id = v.message_id AND m.turn_id = v.turn_id AND m.thread_id = v.thread_id AND m.streaming)`

// statements lists every statement of the projectors.
var statements = func() []string {
	out := []string{sqlAdvance, sqlProjectCreated, sqlProjectRenamed, sqlProjectDeleted,
		sqlThreadCreated, sqlThreadRenamed, sqlThreadArchived, sqlThreadDeleted, sqlThreadTurnStarted,
		sqlThreadIdle, sqlThreadMessageAdded, sqlThreadReverted, sqlTurnStarted, sqlTurnEnded,
		sqlTurnCheckpoint, sqlTurnsReverted, sqlMessageAdded, sqlMessageCompleted, sqlChunksFolded,
		sqlCheckpointCreated, sqlCheckpointsReverted, sqlSettingChanged}
	for _, n := range heldSizes {
		out = append(out, chunkInserts[n], turnLookUps[n])
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
