package projector

// The statements of the projectors, written once with ? placeholders; the
// Applier passes each through its bind func. Created rows use ON CONFLICT DO
// NOTHING (the first one wins); rows that refer to a parent are inserted
// only after sqlHas… found that parent (a missing parent changes nothing).
// Plain VALUES lists keep PostgreSQL's parameter types unambiguous.
const (
	sqlAdvance = `UPDATE projection_state SET last_sequence = ?, updated_at = ?`

	sqlProjectCreated = `INSERT INTO projection_projects (project_id, name, workspace_root, created_at, updated_at, last_sequence)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO NOTHING`
	sqlProjectRenamed = `UPDATE projection_projects SET name = ?, updated_at = ?, last_sequence = ? WHERE project_id = ?`
	sqlProjectDeleted = `UPDATE projection_projects SET deleted_at = COALESCE(deleted_at, ?), updated_at = ?, last_sequence = ? WHERE project_id = ?`

	sqlThreadCreated = `INSERT INTO projection_threads (thread_id, project_id, title, model, status, turn_count, message_count, created_at, updated_at, last_sequence)
		VALUES (?, ?, ?, ?, 'idle', 0, 0, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING`
	sqlThreadRenamed      = `UPDATE projection_threads SET title = ?, updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadArchived     = `UPDATE projection_threads SET archived_at = COALESCE(archived_at, ?), updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadDeleted      = `UPDATE projection_threads SET deleted_at = COALESCE(deleted_at, ?), updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadTurnStarted  = `UPDATE projection_threads SET status = 'running', turn_count = turn_count + 1, latest_turn_id = ?, updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadIdle         = `UPDATE projection_threads SET status = 'idle', updated_at = ?, last_sequence = ? WHERE thread_id = ? AND status = 'running' AND latest_turn_id = ?`
	sqlThreadMessageAdded = `UPDATE projection_threads SET message_count = message_count + 1, updated_at = ?, last_sequence = ? WHERE thread_id = ?`
	sqlThreadTouched      = `UPDATE projection_threads SET updated_at = ?, last_sequence = ? WHERE thread_id = ?`

	sqlTurnStarted = `INSERT INTO projection_turns (turn_id, thread_id, ordinal, status, started_at, last_sequence)
		VALUES (?, ?, (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM projection_turns WHERE thread_id = ?), 'running', ?, ?)
		ON CONFLICT (turn_id) DO NOTHING`
	sqlTurnEnded = `UPDATE projection_turns SET status = ?, error = ?, ended_at = ?, last_sequence = ?
		WHERE turn_id = ? AND thread_id = ? AND status = 'running'`
	sqlTurnCheckpoint = `UPDATE projection_turns SET checkpoint_ref = ?, last_sequence = ? WHERE turn_id = ?`
	sqlTurnsReverted  = `UPDATE projection_turns SET status = 'reverted', last_sequence = ?
		WHERE thread_id = ? AND ordinal > ? AND status <> 'reverted'`

	sqlMessageAdded = `INSERT INTO projection_messages (message_id, thread_id, turn_id, role, text, streaming, added_sequence, created_at, updated_at, last_sequence)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`
	sqlDelta = `UPDATE projection_messages SET text = text || ?, updated_at = ?, last_sequence = ?
		WHERE message_id = ? AND turn_id = ? AND thread_id = ? AND streaming`
	sqlMessageCompleted = `UPDATE projection_messages SET streaming = false, updated_at = ?, last_sequence = ?
		WHERE message_id = ? AND turn_id = ? AND thread_id = ? AND streaming`

	sqlCheckpointCreated = `INSERT INTO checkpoints (thread_id, turn_id, git_ref, message, created_at, last_sequence)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, turn_id) DO NOTHING`
	sqlCheckpointOrdinal = `SELECT MAX(t.ordinal) FROM checkpoints c JOIN projection_turns t ON t.turn_id = c.turn_id
		WHERE c.thread_id = ? AND c.git_ref = ?`
	sqlCheckpointsReverted = `UPDATE checkpoints SET reverted_at = ?, last_sequence = ?
		WHERE thread_id = ? AND reverted_at IS NULL
		AND turn_id IN (SELECT turn_id FROM projection_turns WHERE thread_id = ? AND ordinal > ?)`

	sqlHasProject = `SELECT COUNT(*) FROM projection_projects WHERE project_id = ?`
	sqlHasThread  = `SELECT COUNT(*) FROM projection_threads WHERE thread_id = ?`
	sqlHasTurn    = `SELECT COUNT(*) FROM projection_turns WHERE turn_id = ? AND thread_id = ?`

	sqlSettingChanged = `INSERT INTO settings (key, value, updated_at, last_sequence) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, last_sequence = excluded.last_sequence`
)

// statements lists every statement of the projectors.
var statements = []string{sqlAdvance, sqlProjectCreated, sqlProjectRenamed, sqlProjectDeleted,
	sqlThreadCreated, sqlThreadRenamed, sqlThreadArchived, sqlThreadDeleted, sqlThreadTurnStarted,
	sqlThreadIdle, sqlThreadMessageAdded, sqlThreadTouched, sqlTurnStarted, sqlTurnEnded,
	sqlTurnCheckpoint, sqlTurnsReverted, sqlMessageAdded, sqlDelta, sqlMessageCompleted,
	sqlCheckpointCreated, sqlCheckpointOrdinal, sqlHasProject, sqlHasThread, sqlHasTurn, sqlCheckpointsReverted, sqlSettingChanged}

// Statements returns every statement the projectors run, each passed
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
