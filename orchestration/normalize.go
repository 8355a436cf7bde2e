package orchestration

import (
	"reflect"
	"time"
)

// Normalize returns e in the form in which the store keeps it, so that an
// appended event equals the one read back:
//
//   - a pointer to a catalogued type becomes the value it points to (reads
//     return value types);
//   - `at` is in UTC, without a monotonic clock reading;
//   - the JSON value of a SettingChanged is in canonical form: no
//     whitespace between tokens, strings escaped one way (see Encode). A
//     value that is not well-formed JSON is left as it is (Validate
//     refuses it).
//
// An event already in that form is returned as it is.
func Normalize(e Event) Event {
	if v := reflect.ValueOf(e); v.Kind() == reflect.Pointer && !v.IsNil() {
		if _, ok := catalogueTypes[v.Type().Elem()]; ok {
			e = v.Elem().Interface().(Event)
		}
	}
	if s, ok := e.(SettingChanged); ok {
		s.At = normalTime(s.At)
		if c, ok := canonicalJSON(s.Value); ok {
			s.Value = c
		}
		return s
	}
	at := e.OccurredAt()
	if at.Location() == time.UTC && at == at.Round(0) {
		return e
	}
	// A copy with its At field set; a pointer event (of a type of the
	// caller's) becomes a pointer to a copy.
	t := reflect.TypeOf(e)
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		if reflect.ValueOf(e).IsNil() {
			return e
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return e
	}
	if f, ok := t.FieldByName("At"); !ok || f.Type != timeType || !f.IsExported() {
		return e
	}
	c := reflect.New(t)
	if ptr {
		c.Elem().Set(reflect.ValueOf(e).Elem())
	} else {
		c.Elem().Set(reflect.ValueOf(e))
	}
	c.Elem().FieldByName("At").Set(reflect.ValueOf(normalTime(at)))
	if ptr {
		return c.Interface().(Event)
	}
	return c.Elem().Interface().(Event)
}

// normalTime returns t in UTC without a monotonic clock reading.
func normalTime(t time.Time) time.Time { return t.UTC().Round(0) }
