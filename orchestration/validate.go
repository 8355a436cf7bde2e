package orchestration

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/clip"
)

// FieldError says which field of an event is invalid and why.
type FieldError struct {
	Field   string // the JSON name of the field, such as "project_id"
	Problem string // what is wrong, such as "is empty"
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q %s", e.Field, e.Problem) }

// required checks `at` and then each (name, value) pair of strings, in
// order, for emptiness.
func required(at time.Time, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return &FieldError{Field: pairs[i], Problem: "is empty"}
		}
	}
	if at.IsZero() {
		return &FieldError{Field: "at", Problem: "is not set"}
	}
	return nil
}

func (e ProjectCreated) Validate() error {
	return required(e.At, "project_id", e.ProjectID, "name", e.Name, "workspace_root", e.WorkspaceRoot)
}
func (e ProjectRenamed) Validate() error {
	return required(e.At, "project_id", e.ProjectID, "name", e.Name)
}
func (e ProjectDeleted) Validate() error { return required(e.At, "project_id", e.ProjectID) }
func (e ThreadCreated) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "project_id", e.ProjectID, "title", e.Title, "model", e.Model)
}
func (e ThreadRenamed) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "title", e.Title)
}
func (e ThreadArchived) Validate() error { return required(e.At, "thread_id", e.ThreadID) }
func (e ThreadDeleted) Validate() error  { return required(e.At, "thread_id", e.ThreadID) }
func (e TurnStarted) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID)
}
func (e TurnCompleted) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID)
}
func (e TurnFailed) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID, "error", e.Error)
}
func (e TurnInterrupted) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID)
}

// Validate allows empty text: a streamed reply starts empty.
func (e MessageAdded) Validate() error {
	if err := required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID, "message_id", e.MessageID); err != nil {
		return err
	}
	if !e.Role.Valid() {
		return &FieldError{Field: "role", Problem: "is " + clip.Quote(string(e.Role)) + ", want user, assistant, system or tool"}
	}
	return nil
}

// Validate allows an empty delta: providers send them.
func (e MessageDelta) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID, "message_id", e.MessageID)
}
func (e MessageCompleted) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID, "message_id", e.MessageID)
}

// Validate allows an empty checkpoint message.
func (e CheckpointCreated) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "turn_id", e.TurnID, "git_ref", e.GitRef)
}
func (e CheckpointReverted) Validate() error {
	return required(e.At, "thread_id", e.ThreadID, "git_ref", e.GitRef)
}

// Validate requires a value that is one well-formed JSON value (null is one).
func (e SettingChanged) Validate() error {
	if err := required(e.At, "key", e.Key); err != nil {
		return err
	}
	if len(e.Value) == 0 {
		return &FieldError{Field: "value", Problem: "is empty (use JSON null to clear a setting)"}
	}
	if !json.Valid(e.Value) {
		return &FieldError{Field: "value", Problem: "is not valid JSON"}
	}
	return nil
}
