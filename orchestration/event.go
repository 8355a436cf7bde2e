package orchestration

import "time"

// Event is a domain event of the catalogue. Every catalogued type
// implements it on a value receiver, so a stored event comes back as the
// value type: rec.Event.(orchestration.ProjectCreated).
type Event interface {
	// EventType returns the event's catalogued type name, such as
	// "project.created". It is the value of the events.event_type column.
	EventType() string
	// StreamID returns the stream the event belongs to:
	// "project:<id>", "thread:<id>" or "settings".
	StreamID() string
	// OccurredAt returns the event's `at` timestamp.
	OccurredAt() time.Time
	// Validate reports whether the event is structurally valid: ids and
	// required strings non-empty, a known role, `at` set. The error is a
	// *FieldError.
	Validate() error
}

// Role is the author of a message.
type Role string

// The four roles a message may have.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleSystem    Role = "system"
	RoleTool      Role = "tool"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleUser, RoleAssistant, RoleSystem, RoleTool:
		return true
	}
	return false
}

// Stream ids are built by these functions and nowhere else.

// ProjectStream returns the stream id of a project's events.
func ProjectStream(projectID string) string { return "project:" + projectID }

// ThreadStream returns the stream id of a thread's events, which include
// its turns, messages and checkpoints.
func ThreadStream(threadID string) string { return "thread:" + threadID }

// SettingsStream is the stream of setting.changed events.
const SettingsStream = "settings"
