package orchestration

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// SchemaVersion is the payload version every event type is written with
// (the events.schema_version column). When a type's payload changes in a
// way old readers cannot follow, its version moves on and an upcaster
// turns older payloads into the new shape; until then a payload of any
// other version was written by a newer build and is not read as this one.
const SchemaVersion = 1

// ErrUnknownType is returned by Decode for a type name that is not in the
// catalogue.
var ErrUnknownType = errors.New("unknown event type")

// decoder turns a payload into the catalogued value type.
type decoder func(payload []byte) (Event, error)

// catalogue maps each type name to its decoder. The names come from the
// types' EventType methods, so each name is written once, in events.go.
var catalogue = map[string]decoder{}

func init() {
	register[ProjectCreated]()
	register[ProjectRenamed]()
	register[ProjectDeleted]()
	register[ThreadCreated]()
	register[ThreadRenamed]()
	register[ThreadArchived]()
	register[ThreadDeleted]()
	register[TurnStarted]()
	register[TurnCompleted]()
	register[TurnFailed]()
	register[TurnInterrupted]()
	register[MessageAdded]()
	register[MessageDelta]()
	register[MessageCompleted]()
	register[CheckpointCreated]()
	register[CheckpointReverted]()
	register[SettingChanged]()
}

func register[T Event]() {
	var zero T
	name := zero.EventType()
	if _, dup := catalogue[name]; dup {
		panic("orchestration: event type registered twice: " + name)
	}
	plan := planFor(reflect.TypeFor[T]())
	catalogue[name] = func(payload []byte) (Event, error) {
		var e T
		if err := decodeWith(plan, payload, &e); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// Types returns the catalogued type names, sorted.
func Types() []string {
	names := make([]string, 0, len(catalogue))
	for name := range catalogue {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Known reports whether typ is a catalogued type name.
func Known(typ string) bool {
	_, ok := catalogue[typ]
	return ok
}

// Encode returns the payload of e: its fields as a JSON object with
// snake_case keys, without the type name.
func Encode(e Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("encode: nil event")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return b, nil
}

// Decode turns a stored payload of the given type back into its value type.
func Decode(typ string, payload []byte) (Event, error) {
	dec, ok := catalogue[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	e, err := dec(payload)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}
