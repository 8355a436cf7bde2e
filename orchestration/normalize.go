package orchestration

import (
	"reflect"
	"time"
)

// Normalize returns e with its `at` in UTC and without a monotonic clock
// reading, the form in which the store keeps it, so that an appended event
// equals the one read back. Events already in that form are returned as is.
func Normalize(e Event) Event {
	at := e.OccurredAt()
	if at.Location() == time.UTC && at == at.Round(0) {
		return e
	}
	v := reflect.New(reflect.TypeOf(e)).Elem()
	v.Set(reflect.ValueOf(e))
	if v.Kind() == reflect.Pointer {
		// A pointer event: normalize a copy of what it points to.
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(v.Elem())
		v = c
		c.Elem().FieldByName("At").Set(reflect.ValueOf(at.UTC()))
		return v.Interface().(Event)
	}
	v.FieldByName("At").Set(reflect.ValueOf(at.UTC()))
	return v.Interface().(Event)
}
