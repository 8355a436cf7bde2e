package orchestration

import (
	"encoding/json"
	"time"
)

// The type names of the catalogue. Each is written here once; the
// events.event_type column, the JSON export and the registry take it from
// these constants through EventType.
const (
	TypeProjectCreated     = "project.created"
	TypeProjectRenamed     = "project.renamed"
	TypeProjectDeleted     = "project.deleted"
	TypeThreadCreated      = "thread.created"
	TypeThreadRenamed      = "thread.renamed"
	TypeThreadArchived     = "thread.archived"
	TypeThreadDeleted      = "thread.deleted"
	TypeTurnStarted        = "turn.started"
	TypeTurnCompleted      = "turn.completed"
	TypeTurnFailed         = "turn.failed"
	TypeTurnInterrupted    = "turn.interrupted"
	TypeMessageAdded       = "message.added"
	TypeMessageDelta       = "message.delta"
	TypeMessageCompleted   = "message.completed"
	TypeCheckpointCreated  = "checkpoint.created"
	TypeCheckpointReverted = "checkpoint.reverted"
	TypeSettingChanged     = "setting.changed"
)

// ProjectCreated records that a project (a git workspace) was opened.
type ProjectCreated struct {
	ProjectID     string    `json:"project_id"`
	Name          string    `json:"name"`
	WorkspaceRoot string    `json:"workspace_root"`
	At            time.Time `json:"at"`
}

// ProjectRenamed records a project's new name.
type ProjectRenamed struct {
	ProjectID string    `json:"project_id"`
	Name      string    `json:"name"`
	At        time.Time `json:"at"`
}

// ProjectDeleted records that a project was deleted (soft).
type ProjectDeleted struct {
	ProjectID string    `json:"project_id"`
	At        time.Time `json:"at"`
}

// ThreadCreated records a new conversation with an agent in a project.
type ThreadCreated struct {
	ThreadID  string    `json:"thread_id"`
	ProjectID string    `json:"project_id"`
	Title     string    `json:"title"`
	Model     string    `json:"model"`
	At        time.Time `json:"at"`
}

// ThreadRenamed records a thread's new title.
type ThreadRenamed struct {
	ThreadID string    `json:"thread_id"`
	Title    string    `json:"title"`
	At       time.Time `json:"at"`
}

// ThreadArchived records that a thread was archived.
type ThreadArchived struct {
	ThreadID string    `json:"thread_id"`
	At       time.Time `json:"at"`
}

// ThreadDeleted records that a thread was deleted (soft).
type ThreadDeleted struct {
	ThreadID string    `json:"thread_id"`
	At       time.Time `json:"at"`
}

// TurnStarted records that a thread began a turn: one prompt and the
// agent's work on it.
type TurnStarted struct {
	ThreadID string    `json:"thread_id"`
	TurnID   string    `json:"turn_id"`
	At       time.Time `json:"at"`
}

// TurnCompleted records that a turn ended normally.
type TurnCompleted struct {
	ThreadID string    `json:"thread_id"`
	TurnID   string    `json:"turn_id"`
	At       time.Time `json:"at"`
}

// TurnFailed records that a turn ended with an error.
type TurnFailed struct {
	ThreadID string    `json:"thread_id"`
	TurnID   string    `json:"turn_id"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// TurnInterrupted records that a turn was stopped by the user.
type TurnInterrupted struct {
	ThreadID string    `json:"thread_id"`
	TurnID   string    `json:"turn_id"`
	At       time.Time `json:"at"`
}

// MessageAdded records a message of a turn. A streaming message grows
// by MessageDelta events until MessageCompleted.
type MessageAdded struct {
	ThreadID  string    `json:"thread_id"`
	TurnID    string    `json:"turn_id"`
	MessageID string    `json:"message_id"`
	Role      Role      `json:"role"`
	Text      string    `json:"text"`
	Streaming bool      `json:"streaming"`
	At        time.Time `json:"at"`
}

// MessageDelta records a piece of streamed text appended to a message.
type MessageDelta struct {
	ThreadID  string    `json:"thread_id"`
	TurnID    string    `json:"turn_id"`
	MessageID string    `json:"message_id"`
	Delta     string    `json:"delta"`
	At        time.Time `json:"at"`
}

// MessageCompleted records that a streaming message is complete.
type MessageCompleted struct {
	ThreadID  string    `json:"thread_id"`
	TurnID    string    `json:"turn_id"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
}

// CheckpointCreated records a git checkpoint taken after a turn.
type CheckpointCreated struct {
	ThreadID string    `json:"thread_id"`
	TurnID   string    `json:"turn_id"`
	GitRef   string    `json:"git_ref"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"`
}

// CheckpointReverted records that a thread's workspace was reverted to a
// checkpoint; the turns after it are reverted.
type CheckpointReverted struct {
	ThreadID string    `json:"thread_id"`
	GitRef   string    `json:"git_ref"`
	At       time.Time `json:"at"`
}

// SettingChanged records a new value (any JSON value) for a setting.
type SettingChanged struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	At    time.Time       `json:"at"`
}

func (ProjectCreated) EventType() string     { return TypeProjectCreated }
func (ProjectRenamed) EventType() string     { return TypeProjectRenamed }
func (ProjectDeleted) EventType() string     { return TypeProjectDeleted }
func (ThreadCreated) EventType() string      { return TypeThreadCreated }
func (ThreadRenamed) EventType() string      { return TypeThreadRenamed }
func (ThreadArchived) EventType() string     { return TypeThreadArchived }
func (ThreadDeleted) EventType() string      { return TypeThreadDeleted }
func (TurnStarted) EventType() string        { return TypeTurnStarted }
func (TurnCompleted) EventType() string      { return TypeTurnCompleted }
func (TurnFailed) EventType() string         { return TypeTurnFailed }
func (TurnInterrupted) EventType() string    { return TypeTurnInterrupted }
func (MessageAdded) EventType() string       { return TypeMessageAdded }
func (MessageDelta) EventType() string       { return TypeMessageDelta }
func (MessageCompleted) EventType() string   { return TypeMessageCompleted }
func (CheckpointCreated) EventType() string  { return TypeCheckpointCreated }
func (CheckpointReverted) EventType() string { return TypeCheckpointReverted }
func (SettingChanged) EventType() string     { return TypeSettingChanged }

func (e ProjectCreated) StreamID() string     { return ProjectStream(e.ProjectID) }
func (e ProjectRenamed) StreamID() string     { return ProjectStream(e.ProjectID) }
func (e ProjectDeleted) StreamID() string     { return ProjectStream(e.ProjectID) }
func (e ThreadCreated) StreamID() string      { return ThreadStream(e.ThreadID) }
func (e ThreadRenamed) StreamID() string      { return ThreadStream(e.ThreadID) }
func (e ThreadArchived) StreamID() string     { return ThreadStream(e.ThreadID) }
func (e ThreadDeleted) StreamID() string      { return ThreadStream(e.ThreadID) }
func (e TurnStarted) StreamID() string        { return ThreadStream(e.ThreadID) }
func (e TurnCompleted) StreamID() string      { return ThreadStream(e.ThreadID) }
func (e TurnFailed) StreamID() string         { return ThreadStream(e.ThreadID) }
func (e TurnInterrupted) StreamID() string    { return ThreadStream(e.ThreadID) }
func (e MessageAdded) StreamID() string       { return ThreadStream(e.ThreadID) }
func (e MessageDelta) StreamID() string       { return ThreadStream(e.ThreadID) }
func (e MessageCompleted) StreamID() string   { return ThreadStream(e.ThreadID) }
func (e CheckpointCreated) StreamID() string  { return ThreadStream(e.ThreadID) }
func (e CheckpointReverted) StreamID() string { return ThreadStream(e.ThreadID) }
func (SettingChanged) StreamID() string       { return SettingsStream }

func (e ProjectCreated) OccurredAt() time.Time     { return e.At }
func (e ProjectRenamed) OccurredAt() time.Time     { return e.At }
func (e ProjectDeleted) OccurredAt() time.Time     { return e.At }
func (e ThreadCreated) OccurredAt() time.Time      { return e.At }
func (e ThreadRenamed) OccurredAt() time.Time      { return e.At }
func (e ThreadArchived) OccurredAt() time.Time     { return e.At }
func (e ThreadDeleted) OccurredAt() time.Time      { return e.At }
func (e TurnStarted) OccurredAt() time.Time        { return e.At }
func (e TurnCompleted) OccurredAt() time.Time      { return e.At }
func (e TurnFailed) OccurredAt() time.Time         { return e.At }
func (e TurnInterrupted) OccurredAt() time.Time    { return e.At }
func (e MessageAdded) OccurredAt() time.Time       { return e.At }
func (e MessageDelta) OccurredAt() time.Time       { return e.At }
func (e MessageCompleted) OccurredAt() time.Time   { return e.At }
func (e CheckpointCreated) OccurredAt() time.Time  { return e.At }
func (e CheckpointReverted) OccurredAt() time.Time { return e.At }
func (e SettingChanged) OccurredAt() time.Time     { return e.At }
