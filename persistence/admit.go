package persistence

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/peonhq/peon/internal/clip"
	"github.com/peonhq/peon/orchestration"
)

// The admission rules: what Append and Import let into the log, one
// event at a time, in this order. Both call admit, so the rules are
// written once.
//
//  1. The event is of a catalogued type (or a pointer to one).
//  2. Its ids and keys are at most MaxIDBytes long, and a JSON value in
//     it nests at most MaxJSONDepth levels and is valid UTF-8.
//  3. It is structurally valid (its Validate method).
//  4. It is normalized (orchestration.Normalize: the At time in UTC, a JSON value
//     in canonical form) and encoded.
//  5. Its payload is at most MaxPayloadBytes.
//  6. Its strings are valid UTF-8 without NUL bytes (see checkText).
//
// The metadata ids stored with it (command, correlation and causation
// id) follow rule 2 and 6 too (admitMeta).

// MaxPayloadBytes is the largest encoded payload one event may have.
// Larger events are refused with ErrInvalidEvent; store big blobs (diffs,
// files) elsewhere and record a reference.
const MaxPayloadBytes = 1 << 20

// MaxIDBytes is the longest id or key, in bytes, that an event may carry:
// project_id, thread_id, turn_id, message_id, git_ref and a setting's key,
// and the command, correlation and causation ids of an Append. A stream
// id is a prefix ("project:", "thread:") and one such id. They are
// indexed, and PostgreSQL refuses an index entry over 2,704 bytes (a
// third of a page); at 1,024 bytes even the two-id indexes (thread and
// turn, thread and git ref) fit, so a log that one engine accepts every
// engine accepts. Longer ids are refused with ErrInvalidEvent, by Append
// and by Import alike.
const MaxIDBytes = 1024

// MaxJSONDepth is how deeply a JSON value in an event (a setting's value)
// may nest arrays and objects: `[[1]]` is 2 levels deep. A value is
// stored inside the payload (one level more) and the payload inside an
// export line (another), and every reader of those must parse it:
// encoding/json gives up at 10,000 levels and SQLite's JSON functions at
// 1,000. Real settings nest a few levels; 64 leaves room and keeps every
// reader far from its limit. Deeper values are refused with
// ErrInvalidEvent, by Append and by Import alike.
const MaxJSONDepth = 64

// maxStreamIDBytes is the longest stream id an event can have.
var maxStreamIDBytes = len(orchestration.ProjectStream("")) + MaxIDBytes

// idFields are the JSON names of the event fields that are ids or keys
// (MaxIDBytes): the ones the store indexes, directly or in a stream id.
var idFields = map[string]bool{
	"project_id": true, "thread_id": true, "turn_id": true, "message_id": true,
	"git_ref": true, "key": true,
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// admit applies the admission rules to e and returns it as the store
// keeps it, with its payload. The error is the reason e is refused,
// usually an *orchestration.FieldError; the caller says which event it
// was (an *InvalidEventError).
func admit(e orchestration.Event) (orchestration.Event, []byte, error) {
	if isNil(e) {
		return nil, nil, errors.New("nil event")
	}
	if !orchestration.Catalogued(e) {
		return nil, nil, fmt.Errorf("%s is not an event type of the catalogue; append only the types of package orchestration",
			clip.String(fmt.Sprintf("%T", e)))
	}
	if err := checkLimits(e); err != nil {
		return nil, nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, nil, err
	}
	e = orchestration.Normalize(e)
	p, err := orchestration.Encode(e)
	if err != nil {
		return nil, nil, err
	}
	if len(p) > MaxPayloadBytes {
		return nil, nil, fmt.Errorf("payload is %d bytes, more than the limit of %d", len(p), MaxPayloadBytes)
	}
	if err := checkText(e, p); err != nil {
		return nil, nil, err
	}
	return e, p, nil
}

// typeName is the type name of e for an *InvalidEventError: "" for a nil
// event.
func typeName(e orchestration.Event) string {
	if isNil(e) {
		return ""
	}
	return e.EventType()
}

// isNil reports whether e is nil or a nil pointer.
func isNil(e orchestration.Event) bool {
	if e == nil {
		return true
	}
	v := reflect.ValueOf(e)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// checkLimits returns a *orchestration.FieldError for the first id field
// of e longer than MaxIDBytes, or JSON value nested deeper than
// MaxJSONDepth or not valid UTF-8. e is of a catalogued type.
func checkLimits(e orchestration.Event) error {
	v := reflect.ValueOf(e)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for _, f := range limitedFields(v.Type()) {
		fv := v.Field(f.index)
		if !f.json {
			if n := fv.Len(); n > MaxIDBytes {
				return &orchestration.FieldError{Field: f.name, Problem: tooLong(n)}
			}
			continue
		}
		b := fv.Bytes()
		if d := jsonDepth(b); d > MaxJSONDepth {
			return &orchestration.FieldError{Field: f.name,
				Problem: fmt.Sprintf("nests %d levels deep, more than the limit of %d", d, MaxJSONDepth)}
		}
		if !utf8.Valid(b) {
			return &orchestration.FieldError{Field: f.name, Problem: "is not valid UTF-8"}
		}
	}
	return nil
}

// limitedField is a field of an event type that checkLimits checks: an id
// (a string) or a JSON value.
type limitedField struct {
	index int
	name  string // its JSON name
	json  bool   // a json.RawMessage, not an id
}

var limitedFieldsOf sync.Map // reflect.Type -> []limitedField

// limitedFields returns the fields of struct type t that checkLimits
// checks, worked out once per type.
func limitedFields(t reflect.Type) []limitedField {
	if fs, ok := limitedFieldsOf.Load(t); ok {
		return fs.([]limitedField)
	}
	var fs []limitedField
	for i := range t.NumField() {
		f := t.Field(i)
		switch name := jsonName(f); {
		case f.Type.Kind() == reflect.String && idFields[name]:
			fs = append(fs, limitedField{index: i, name: name})
		case f.Type == rawMessageType:
			fs = append(fs, limitedField{index: i, name: name, json: true})
		}
	}
	limitedFieldsOf.Store(t, fs)
	return fs
}

func tooLong(n int) string {
	return fmt.Sprintf("is %d bytes, more than the limit of %d", n, MaxIDBytes)
}

// jsonName is the JSON name of a struct field.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// jsonDepth returns how deeply b, JSON text, nests arrays and objects.
// Brackets inside strings do not count; b need not be well-formed.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// admitMeta checks the metadata ids an event is stored with, as admit
// checks the event's own ids, and returns a *orchestration.FieldError
// naming the column (command_id, correlation_id, causation_id).
func admitMeta(command, correlation, causation string) error {
	for _, f := range []struct{ name, v string }{
		{"command_id", command}, {"correlation_id", correlation}, {"causation_id", causation},
	} {
		if p := textProblem(f.v); p != "" {
			return &orchestration.FieldError{Field: f.name, Problem: p}
		}
		if len(f.v) > MaxIDBytes {
			return &orchestration.FieldError{Field: f.name, Problem: tooLong(len(f.v))}
		}
	}
	return nil
}

// checkExpected checks the stream ids of AppendOpts.ExpectedVersions: text
// the database can hold, no longer than any stream id can be, and a
// version that is not negative.
func checkExpected(versions map[string]int64) error {
	for st, v := range versions {
		if p := textProblem(st); p != "" {
			return fmt.Errorf("the expected stream %s %s", clip.Quote(st), p)
		}
		if len(st) > maxStreamIDBytes {
			return fmt.Errorf("the expected stream %s is longer than any stream id (%d bytes at most: a prefix and an id of up to %d)",
				clip.Quote(st), maxStreamIDBytes, MaxIDBytes)
		}
		if v < 0 {
			return fmt.Errorf("expected version %d of %s is negative", v, clip.String(st))
		}
	}
	return nil
}
