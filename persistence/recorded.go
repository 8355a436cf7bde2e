package persistence

import (
	"time"

	"github.com/peonhq/peon/orchestration"
)

// NoStream is the expected version of a stream that must not exist yet.
const NoStream int64 = 0

// Recorded is a stored event with its position and metadata.
type Recorded struct {
	Sequence      int64  // position in the log: 1, 2, 3…
	EventID       string // UUID
	StreamID      string
	StreamVersion int64 // 1, 2, 3… within the stream
	Type          string
	SchemaVersion int
	// Event is the decoded value type, such as orchestration.ProjectCreated.
	// It is nil when the row could not be decoded (see DecodeError).
	Event         orchestration.Event
	OccurredAt    time.Time // the event's At time, UTC
	RecordedAt    time.Time // when it was stored, UTC, to the microsecond
	CommandID     string    // "" when none
	CorrelationID string    // "" when none
	CausationID   string    // "" when none
	// Payload is the stored JSON of the event.
	Payload []byte
}
