package persistence

import (
	"time"

	"github.com/peonhq/peon/orchestration"
)

// NoStream is the expected version of a stream that must not exist yet.
const NoStream int64 = 0

// AppendOpts are the optional inputs of an Append. A nil *AppendOpts is
// the same as the zero value.
type AppendOpts struct {
	// ExpectedVersions maps a stream id to the version the stream must be
	// at for the Append to succeed: NoStream (0) for a stream that must
	// not exist yet. Streams absent from the map are not checked.
	ExpectedVersions map[string]int64
	// CommandID makes the Append idempotent: when an Append with the same
	// CommandID was stored before, nothing is written and the records of
	// that first Append are returned. Empty means no idempotency.
	CommandID string
	// CorrelationID and CausationID are stored on every event of the
	// Append. Empty means NULL.
	CorrelationID string
	CausationID   string
}

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
