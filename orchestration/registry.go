package orchestration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/peonhq/peon/internal/clip"
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

// catalogueTypes maps each catalogued Go type to its type name.
var catalogueTypes = map[reflect.Type]string{}

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
	catalogueTypes[reflect.TypeFor[T]()] = name
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

// Catalogued reports whether e is of a catalogued type, or a non-nil
// pointer to one. A type of the caller's that implements Event is not,
// whatever name its EventType returns.
func Catalogued(e Event) bool {
	v := reflect.ValueOf(e)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
	}
	_, ok := catalogueTypes[v.Type()]
	return ok
}

// encoder is a reusable buffer and json.Encoder writing into it.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// Encode returns the payload of e: its fields as a JSON object with
// snake_case keys, without the type name. Strings are escaped as in the
// canonical form of a JSON value (see Normalize): no HTML escaping, U+2028
// and U+2029 escaped. A JSON value (SettingChanged.Value) is written
// without whitespace but otherwise as it is; Normalize first puts it in
// canonical form, as the store does.
func Encode(e Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("encode: nil event")
	}
	enc := encoders.Get().(*encoder)
	defer func() {
		if enc.buf.Cap() <= 64<<10 { // a big event's buffer is not kept
			encoders.Put(enc)
		}
	}()
	enc.buf.Reset()
	if err := enc.enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	b := enc.buf.Bytes()
	return bytes.Clone(b[:len(b)-1]), nil // without Encode's newline
}

// Decode turns a stored payload of the given type back into its value type.
func Decode(typ string, payload []byte) (Event, error) {
	dec, ok := catalogue[typ]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownType, clip.Quote(typ))
	}
	e, err := dec(payload)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}
