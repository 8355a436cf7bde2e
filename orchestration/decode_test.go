package orchestration

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// compareDecode decodes data into T with decodeFast and with
// json.Unmarshal and fails unless both give the same value and error.
func compareDecode[T any](t testing.TB, data []byte) {
	t.Helper()
	var fast, std T
	fastErr := decodeFast(data, &fast)
	stdErr := json.Unmarshal(data, &std)
	if (fastErr == nil) != (stdErr == nil) || fastErr != nil && fastErr.Error() != stdErr.Error() {
		t.Fatalf("%T from %q: decodeFast error %v, encoding/json error %v", fast, data, fastErr, stdErr)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%T from %q:\ndecodeFast    %#v\nencoding/json %#v", fast, data, fast, std)
	}
}

// decodeComparisons has one compareDecode per catalogued type, by name.
var decodeComparisons = map[string]func(testing.TB, []byte){
	TypeProjectCreated:     compareDecode[ProjectCreated],
	TypeProjectRenamed:     compareDecode[ProjectRenamed],
	TypeProjectDeleted:     compareDecode[ProjectDeleted],
	TypeThreadCreated:      compareDecode[ThreadCreated],
	TypeThreadRenamed:      compareDecode[ThreadRenamed],
	TypeThreadArchived:     compareDecode[ThreadArchived],
	TypeThreadDeleted:      compareDecode[ThreadDeleted],
	TypeTurnStarted:        compareDecode[TurnStarted],
	TypeTurnCompleted:      compareDecode[TurnCompleted],
	TypeTurnFailed:         compareDecode[TurnFailed],
	TypeTurnInterrupted:    compareDecode[TurnInterrupted],
	TypeMessageAdded:       compareDecode[MessageAdded],
	TypeMessageDelta:       compareDecode[MessageDelta],
	TypeMessageCompleted:   compareDecode[MessageCompleted],
	TypeCheckpointCreated:  compareDecode[CheckpointCreated],
	TypeCheckpointReverted: compareDecode[CheckpointReverted],
	TypeSettingChanged:     compareDecode[SettingChanged],
}

var decodeT0 = time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)

// decodeSamples is one event of every catalogued type.
func decodeSamples() []Event {
	at := func(n int) time.Time { return decodeT0.Add(time.Duration(n) * time.Second) }
	return []Event{
		ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at(0)},
		ProjectRenamed{ProjectID: "p1", Name: "peon-core", At: at(1)},
		ProjectDeleted{ProjectID: "p1", At: at(2)},
		ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix the build", Model: "gpt-5", At: at(3)},
		ThreadRenamed{ThreadID: "t1", Title: "Fix the <CI> build & more", At: at(4)},
		ThreadArchived{ThreadID: "t1", At: at(5)},
		ThreadDeleted{ThreadID: "t1", At: at(6)},
		TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(7)},
		TurnCompleted{ThreadID: "t1", TurnID: "u1", At: at(8)},
		TurnFailed{ThreadID: "t1", TurnID: "u2", Error: "provider timeout:\n\tretry later", At: at(9)},
		TurnInterrupted{ThreadID: "t1", TurnID: "u3", At: at(10)},
		MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: RoleUser, Text: "Why does CI fail?", At: at(11)},
		MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "It is \"gofmt\" — ünïcode ✓ \U0001F600 \u2028", At: at(12)},
		MessageCompleted{ThreadID: "t1", TurnID: "u1", MessageID: "m2", At: time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC)},
		CheckpointCreated{ThreadID: "t1", TurnID: "u1", GitRef: "refs/peon/u1", Message: "after turn 1", At: at(14)},
		CheckpointReverted{ThreadID: "t1", GitRef: "refs/peon/u1", At: at(15)},
		SettingChanged{Key: "theme", Value: json.RawMessage(`{"mode":"dark","size":14}`), At: at(16)},
	}
}

func TestDecodeComparisonsCoverCatalogue(t *testing.T) {
	t.Parallel()
	names := make([]string, 0, len(decodeComparisons))
	for name := range decodeComparisons {
		names = append(names, name)
	}
	require.ElementsMatch(t, Types(), names)
}

func TestDecodeFastRoundTrips(t *testing.T) {
	t.Parallel()
	for _, e := range decodeSamples() {
		t.Run(e.EventType(), func(t *testing.T) {
			t.Parallel()
			payload, err := Encode(e)
			require.NoError(t, err)
			got, err := Decode(e.EventType(), payload)
			require.NoError(t, err)
			require.Equal(t, e, got)
			decodeComparisons[e.EventType()](t, payload)

			// The scanner, not the fallback, decoded it (but for the one
			// type with a raw JSON value).
			plan := planFor(reflect.TypeOf(e))
			if e.EventType() == TypeSettingChanged {
				require.Nil(t, plan)
				return
			}
			require.NotNil(t, plan)
			v := reflect.New(reflect.TypeOf(e))
			require.True(t, plan.scan(payload, v.UnsafePointer()), "scanner refused %s", payload)
			require.Equal(t, e, v.Elem().Interface())
		})
	}
}

// decodeCases are payloads of message.delta (most fields) and
// message.added (the bool) that take every branch of the scanner, and
// whether the scanner itself should decode them.
var decodeCases = []struct {
	name, typ, payload string
	scanned            bool
}{
	{"Plain", TypeMessageDelta, `{"thread_id":"t","turn_id":"u","message_id":"m","delta":"hi","at":"2026-11-28T09:00:00.5Z"}`, true},
	{"Spaces", TypeMessageDelta, " \t\r\n{ \"thread_id\" : \"t\" ,\n\"delta\":\"x\" , \"at\" : \"2026-11-28T09:00:00Z\" }\n ", true},
	{"Empty", TypeMessageDelta, `{}`, true},
	{"FieldsMissing", TypeMessageDelta, `{"delta":"only"}`, true},
	{"DuplicateKeyLastWins", TypeMessageDelta, `{"delta":"a","delta":"b"}`, true},
	{"Escapes", TypeMessageDelta, `{"delta":"q\"b\\s\/n\nr\rt\tb\bf\f u\u00e9\u2028\u0000"}`, true},
	{"UTF8", TypeMessageDelta, `{"delta":"ünïcode ✓ 😀"}`, true},
	{"Bool", TypeMessageAdded, `{"streaming":true,"role":"assistant"}`, true},
	{"BoolFalse", TypeMessageAdded, `{"streaming":false}`, true},
	{"TimeOffset", TypeMessageDelta, `{"at":"2026-11-28T10:00:00.123+01:00"}`, true},
	{"TimeNoFraction", TypeMessageDelta, `{"at":"2026-11-28T09:00:00Z"}`, true},
	{"TimeNineDigits", TypeMessageDelta, `{"at":"2026-11-28T09:00:00.000000001Z"}`, true},
	{"LeapDay", TypeMessageDelta, `{"at":"2024-02-29T09:00:00Z"}`, true},
	{"SurrogatePair", TypeMessageDelta, `{"delta":"\ud83d\ude00"}`, false},
	{"LoneSurrogate", TypeMessageDelta, `{"delta":"\ud83d"}`, false},
	{"InvalidUTF8", TypeMessageDelta, "{\"delta\":\"a\xffb\"}", false},
	{"UnknownKey", TypeMessageDelta, `{"delta":"d","type":"message.delta"}`, false},
	{"CaseMismatch", TypeMessageDelta, `{"Delta":"d","THREAD_ID":"t"}`, false},
	{"Null", TypeMessageDelta, `{"delta":null}`, false},
	{"NullTime", TypeMessageDelta, `{"at":null}`, false},
	{"NumberForString", TypeMessageDelta, `{"delta":1}`, false},
	{"StringForBool", TypeMessageAdded, `{"streaming":"true"}`, false},
	{"Nested", TypeMessageDelta, `{"delta":{"a":1}}`, false},
	{"TrailingGarbage", TypeMessageDelta, `{"delta":"d"}x`, false},
	{"TrailingComma", TypeMessageDelta, `{"delta":"d",}`, false},
	{"Truncated", TypeMessageDelta, `{"delta":"d"`, false},
	{"ControlByte", TypeMessageDelta, "{\"delta\":\"a\nb\"}", false},
	{"BadEscape", TypeMessageDelta, `{"delta":"\x"}`, false},
	{"BadDate", TypeMessageDelta, `{"at":"2026-02-30T09:00:00Z"}`, false},
	{"BadHour", TypeMessageDelta, `{"at":"2026-11-28T24:00:00Z"}`, false},
	{"TenDigits", TypeMessageDelta, `{"at":"2026-11-28T09:00:00.0000000001Z"}`, true},
	{"LowerT", TypeMessageDelta, `{"at":"2026-11-28t09:00:00Z"}`, false},
	{"NotObject", TypeMessageDelta, `["delta"]`, false},
	{"Empty input", TypeMessageDelta, ``, false},
	{"RawValue", TypeSettingChanged, `{"key":"k","value":[1,{"a":null}],"at":"2026-11-28T09:00:00Z"}`, false},
}

func TestDecodeFastMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			decodeComparisons[tc.typ](t, []byte(tc.payload))
			e, err := Decode(tc.typ, []byte("{}"))
			require.NoError(t, err)
			plan := planFor(reflect.TypeOf(e))
			scanned := plan != nil && plan.scan([]byte(tc.payload), reflect.New(reflect.TypeOf(e)).UnsafePointer())
			require.Equal(t, tc.scanned, scanned, "scanner decoded it")
		})
	}
}

func TestParseTimeUTCMatchesTimeParse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"2026-11-28T09:00:00Z", "2026-11-28T09:00:00.1Z", "2026-11-28T09:00:00.123456789Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2023-02-29T00:00:00Z",
		"2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-00-10T00:00:00Z",
		"2026-11-28T09:60:00Z", "2026-11-28T09:00:60Z", "2026-11-28T09:00:00.Z", "2026-11-28 09:00:00Z",
		"+026-11-28T09:00:00Z",
	} {
		want, werr := time.Parse(time.RFC3339Nano, s)
		got, ok := parseTimeUTC([]byte(s))
		if ok {
			require.NoError(t, werr, s)
			require.Equal(t, want, got, s)
		}
		if werr == nil && s != "2026-11-28T09:00:00.Z" {
			require.True(t, ok, s)
		}
	}
}

// FuzzDecode checks that decodeFast and encoding/json agree on any input,
// for every catalogued type. Run it with
//
//	go test ./orchestration -run '^$' -fuzz FuzzDecode -fuzztime 1m
func FuzzDecode(f *testing.F) {
	for _, e := range decodeSamples() {
		payload, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
	for _, tc := range decodeCases {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, compare := range decodeComparisons {
			compare(t, data)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	payload, err := Encode(MessageDelta{ThreadID: "th-0000012", TurnID: "th-0000012-u03", MessageID: "th-0000012-u03-a",
		Delta: "token 7 of the reply ", At: decodeT0})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(TypeMessageDelta, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e MessageDelta
			if err := json.Unmarshal(payload, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
