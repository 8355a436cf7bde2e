package orchestration

import (
	"encoding/json"
	"reflect"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/peonhq/peon/internal/timefmt"
)

// The payload decoder. Replaying a log spends most of its time turning
// payloads back into events, and encoding/json is slow at it: it validates
// the whole input before it decodes, finds fields by reflection and parses
// every `at` with time.Parse. The payloads the store writes are flat JSON
// objects of strings, one bool and an RFC 3339 time, with the keys of the
// struct tags, so a scanner for exactly that shape does the common case in
// a fraction of the time.
//
// The scanner gives up on anything else (an unknown or differently cased
// key, null, a number, a nested value, an escape it does not handle,
// invalid UTF-8, trailing data, a type with a json.RawMessage field) and
// encoding/json decodes the payload from scratch, so the result, value and
// error alike, is always what json.Unmarshal gives. FuzzDecode checks that.
//
// The string fields of a decoded event share one copy of its payload (one
// allocation instead of one per field), so keeping any of them keeps that
// copy, about the size of all of them together.

// fieldKind is what the scanner can store in a field.
type fieldKind uint8

const (
	kindString fieldKind = iota // string or a string type such as Role
	kindBool
	kindTime // time.Time, written by its MarshalJSON
)

// fieldPlan is one JSON key of a struct and where its value goes.
type fieldPlan struct {
	name   string
	kind   fieldKind
	offset uintptr
}

// structPlan is how the scanner decodes one struct type. A nil plan means
// the type is not for the scanner and encoding/json does all the work.
type structPlan struct {
	fields []fieldPlan
}

var (
	timeType = reflect.TypeFor[time.Time]()
	plans    sync.Map // reflect.Type -> *structPlan
)

// planFor returns the plan of t, nil when a field is of a kind the scanner
// does not handle or its tag has options other than a name.
func planFor(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := buildPlan(t)
	plans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type) *structPlan {
	if t.Kind() != reflect.Struct {
		return nil
	}
	p := &structPlan{}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("json")
		if !f.IsExported() || name == "" || name == "-" || !isPlainKey(name) || seen[name] {
			return nil
		}
		seen[name] = true
		var kind fieldKind
		switch {
		case f.Type == timeType:
			kind = kindTime
		case f.Type.Kind() == reflect.String:
			kind = kindString
		case f.Type.Kind() == reflect.Bool:
			kind = kindBool
		default:
			return nil
		}
		p.fields = append(p.fields, fieldPlan{name: name, kind: kind, offset: f.Offset})
	}
	return p
}

// isPlainKey reports whether a tag name is a key the scanner matches
// exactly: lower-case ASCII letters, digits and underscores (no options
// such as ",omitempty", nothing that case folding could match otherwise).
func isPlainKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// decodeFast decodes payload into *e exactly as json.Unmarshal does, with
// the scanner when it can.
func decodeFast[T any](payload []byte, e *T) error {
	return decodeWith(planFor(reflect.TypeFor[T]()), payload, e)
}

// decodeWith is decodeFast with the plan of T already at hand.
func decodeWith[T any](p *structPlan, payload []byte, e *T) error {
	if p != nil && p.scan(payload, unsafe.Pointer(e)) {
		return nil
	}
	var zero T
	*e = zero // the scanner may have set some fields before it gave up
	return json.Unmarshal(payload, e)
}

// scan decodes data into the struct at base and reports whether it could.
// On false, base may be partly written.
func (p *structPlan) scan(data []byte, base unsafe.Pointer) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	// whole is data as one string, made on the first string value: the
	// values without escapes are its substrings, one allocation in all.
	var whole string
	for {
		// "key"
		if i >= len(data) || data[i] != '"' {
			return false
		}
		start := i + 1
		j := start
		for j < len(data) && data[j] != '"' && data[j] != '\\' && data[j] >= 0x20 && data[j] < 0x80 {
			j++
		}
		if j >= len(data) || data[j] != '"' {
			return false // an escape or odd byte in a key: not ours
		}
		f := p.field(data[start:j])
		if f == nil {
			return false
		}
		i = skipSpace(data, j+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		// value
		ptr := unsafe.Add(base, f.offset)
		switch f.kind {
		case kindString:
			s, n, ok := scanString(data, i, &whole)
			if !ok {
				return false
			}
			*(*string)(ptr) = s
			i = n
		case kindBool:
			switch {
			case hasPrefix(data[i:], "true"):
				*(*bool)(ptr) = true
				i += 4
			case hasPrefix(data[i:], "false"):
				*(*bool)(ptr) = false
				i += 5
			default:
				return false
			}
		case kindTime:
			if data[i] != '"' {
				return false
			}
			end := i + 1
			for end < len(data) && data[end] != '"' && data[end] != '\\' && data[end] >= 0x20 && data[end] < 0x80 {
				end++
			}
			if end >= len(data) || data[end] != '"' {
				return false
			}
			t, ok := parseTimeUTC(data[i+1 : end])
			if !ok {
				// Another zone or layout: time.Time's own decoder, as
				// encoding/json would call it.
				if err := t.UnmarshalJSON(data[i : end+1]); err != nil {
					return false
				}
			}
			*(*time.Time)(ptr) = t
			i = end + 1
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// field returns the plan of the field whose name is exactly key.
func (p *structPlan) field(key []byte) *fieldPlan {
	for k := range p.fields {
		if p.fields[k].name == string(key) {
			return &p.fields[k]
		}
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// scanString reads the JSON string that starts at data[i] (a quote) and
// returns it and the index after its closing quote. It handles the
// escapes encoding/json writes except surrogate pairs, and refuses
// invalid UTF-8 (which encoding/json would replace) and control bytes
// (which it rejects). A string without escapes is a substring of *whole,
// which it sets to string(data) when empty.
func scanString(data []byte, i int, whole *string) (string, int, bool) {
	if data[i] != '"' {
		return "", 0, false
	}
	start := i + 1
	j, high := start, false
	for j < len(data) {
		c := data[j]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		if c >= 0x80 {
			high = true
		}
		j++
	}
	if j >= len(data) || data[j] < 0x20 {
		return "", 0, false
	}
	if data[j] == '"' {
		if high && !utf8.Valid(data[start:j]) {
			return "", 0, false
		}
		if *whole == "" {
			*whole = string(data)
		}
		return (*whole)[start:j], j + 1, true
	}
	// Escapes: copy and unescape.
	buf := make([]byte, 0, j-start+16)
	buf = append(buf, data[start:j]...)
	for j < len(data) {
		c := data[j]
		switch {
		case c == '"':
			if high && !utf8.Valid(buf) {
				return "", 0, false
			}
			return string(buf), j + 1, true
		case c < 0x20:
			return "", 0, false
		case c != '\\':
			if c >= 0x80 {
				high = true
			}
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(data) {
			return "", 0, false
		}
		switch data[j+1] {
		case '"', '\\', '/':
			buf = append(buf, data[j+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(data, j+2)
			if !ok || utf16.IsSurrogate(r) {
				return "", 0, false // pairs and lone halves: encoding/json decides
			}
			buf = utf8.AppendRune(buf, r)
			j += 6
			continue
		default:
			return "", 0, false
		}
		j += 2
	}
	return "", 0, false
}

// hex4 reads four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// parseTimeUTC parses the form time.Time.MarshalJSON writes for a UTC
// time, "2006-01-02T15:04:05.999999999Z", checking the ranges time.Parse
// checks. Anything else is false.
func parseTimeUTC(b []byte) (time.Time, bool) { return timefmt.ParseUTC(b, 'T', "Z") }
