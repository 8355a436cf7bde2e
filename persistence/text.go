package persistence

import (
	"bytes"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/peonhq/peon/orchestration"
)

// Strings are stored twice: inside the JSON payload, where encoding/json
// replaces invalid UTF-8 with U+FFFD, and raw in columns (stream_id, the
// projection tables), where PostgreSQL refuses invalid UTF-8 and NUL bytes.
// So that an event reads back as it was appended on every engine, Append
// refuses a string that is not valid UTF-8 or holds a NUL byte.

var (
	nulEscape   = []byte(`\u0000`) // how encoding/json writes NUL
	replacement = []byte(`\ufffd`) // how it writes invalid UTF-8
)

// checkText returns a *orchestration.FieldError for the first string field
// of e that is not valid UTF-8 or holds a NUL byte. payload is e encoded:
// when it holds neither NUL nor U+FFFD, no field can, and e is not looked
// at.
func checkText(e orchestration.Event, payload []byte) error {
	if !bytes.Contains(payload, nulEscape) && !bytes.Contains(payload, replacement) {
		return nil
	}
	v := reflect.ValueOf(e)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			if problem := textProblem(f.String()); problem != "" {
				return &orchestration.FieldError{Field: name, Problem: problem}
			}
		}
	}
	return nil
}

// textProblem says what is wrong with s as stored text, "" when nothing.
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}
