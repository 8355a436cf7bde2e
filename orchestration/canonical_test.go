package orchestration

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, in, want string }{
		{"Compact", `{"a":[1,2],"b":"c"}`, `{"a":[1,2],"b":"c"}`},
		{"Whitespace", " {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : \"c d\" } ", `{"a":[1,2],"b":"c d"}`},
		{"HTMLStaysLiteral", `"<a href=x>&amp;</a>"`, `"<a href=x>&amp;</a>"`},
		{"HTMLEscapesUndone", `"\u003c\u003E\u0026"`, `"<>&"`},
		{"Separators", "\"\u2028\u2029\"", `"\u2028\u2029"`},
		{"SeparatorEscapesKept", `"\u2028\u2029"`, `"\u2028\u2029"`},
		{"SeparatorEscapesLowerCase", `"\u202A\u2028"`, "\"\u202a\\u2028\""},
		{"ShortEscapes", `"\u0008\u000c\u000a\u000d\u0009"`, `"\b\f\n\r\t"`},
		{"ShortEscapesKept", `"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
		{"ControlEscapes", `"\u0000\u001F\u001f"`, `"\u0000\u001f\u001f"`},
		{"QuoteAndBackslashEscapes", `"\u0022\u005C"`, `"\"\\"`},
		{"Slash", `"a\/b"`, `"a/b"`},
		{"Letters", `"\u0041\u00e9\u4E2D"`, `"Aé中"`},
		{"SurrogatePair", `"\uD83D\uDE00 \ud83d\ude00"`, `"😀 😀"`},
		{"LoneHigh", `"\uD800x"`, `"\ud800x"`},
		{"LoneLow", `"\udc00"`, `"\udc00"`},
		{"TwoHighs", `"\ud800\ud83d\ude00"`, `"\ud800😀"`},
		{"EscapedBackslashBeforeU", `"\\ud800\udc00"`, `"\\ud800\udc00"`},
		{"DEL", "\"\x7f\"", "\"\x7f\""},
		{"Numbers", `[ -0 , 1.50 , 1E+3 , 2e-7 ]`, `[-0,1.50,1E+3,2e-7]`},
		{"Literals", `[ true , false , null ]`, `[true,false,null]`},
		{"KeysInOrderAndDuplicates", `{"b":1, "a":2, "b":3}`, `{"b":1,"a":2,"b":3}`},
		{"EscapedKey", `{"\u0061 b":1}`, `{"a b":1}`},
		{"Scalar", ` 7 `, `7`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, json.Valid([]byte(c.in)), "input %s", c.in)
			got, ok := canonicalJSON([]byte(c.in))
			require.True(t, ok)
			require.Equal(t, c.want, string(got))
			requireSameJSON(t, []byte(c.in), got)
			again, ok := canonicalJSON(got)
			require.True(t, ok)
			require.Equal(t, string(got), string(again), "the canonical form is a fixed point")
		})
	}
	t.Run("CanonicalInputIsNotCopied", func(t *testing.T) {
		t.Parallel()
		in := []byte(`{"a":"<b>"}`)
		got, ok := canonicalJSON(in)
		require.True(t, ok)
		require.Same(t, &in[0], &got[0])
	})
	t.Run("RefusesWhatItCannotRead", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{`"unterminated`, "\"\xff\"", `"\x"`, `"\u12"`, "\"a\nb\""} {
			_, ok := canonicalJSON([]byte(in))
			require.False(t, ok, "%q", in)
		}
	})
}

// requireSameJSON checks that a and b decode to the same value.
func requireSameJSON(t testing.TB, a, b []byte) {
	t.Helper()
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	require.NoError(t, da.Decode(&va))
	require.NoError(t, db.Decode(&vb))
	require.Equal(t, va, vb, "%s and %s", a, b)
}

// TestCanonicalStringsAreEncodes: a string in a canonical value is written
// as Encode writes a string field, so one rule holds for a whole payload.
func TestCanonicalStringsAreEncodes(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{"", "plain", "<>&'", "\x00\x01\x1f\x7f", "é中😀", all.String()} {
		p, err := Encode(ThreadRenamed{ThreadID: "t", Title: s})
		require.NoError(t, err)
		field, _, _ := strings.Cut(strings.TrimPrefix(string(p), `{"thread_id":"t","title":`), `,"at":`)
		quoted, err := json.Marshal(s) // HTML-escaped: canonicalJSON undoes it
		require.NoError(t, err)
		got, ok := canonicalJSON(quoted)
		require.True(t, ok)
		require.Equal(t, field, string(got))
	}
}

func TestEncodeDoesNotEscapeHTML(t *testing.T) {
	t.Parallel()
	p, err := Encode(ThreadRenamed{ThreadID: "t", Title: "<b> & \u2028"})
	require.NoError(t, err)
	require.Contains(t, string(p), `"title":"<b> & \u2028"`)
	require.False(t, bytes.HasSuffix(p, []byte("\n")))
}

func TestNormalizeSetting(t *testing.T) {
	t.Parallel()
	e := SettingChanged{Key: "k", Value: json.RawMessage(" { \"a\" : \"\\u003c\" } "), At: decodeT0}
	n := Normalize(e).(SettingChanged)
	require.Equal(t, `{"a":"<"}`, string(n.Value))
	p, err := Encode(n)
	require.NoError(t, err)
	back, err := Decode(TypeSettingChanged, p)
	require.NoError(t, err)
	require.Equal(t, n, back, "a normalized event reads back equal")
	// Not JSON: left as it is.
	bad := SettingChanged{Key: "k", Value: json.RawMessage("{nope"), At: decodeT0}
	require.Equal(t, bad, Normalize(bad))
}

func TestNormalizePointer(t *testing.T) {
	t.Parallel()
	e := TurnStarted{ThreadID: "t", TurnID: "u", At: decodeT0}
	require.Equal(t, e, Normalize(&e), "a pointer to a catalogued type becomes its value")
	require.True(t, Catalogued(e))
	require.True(t, Catalogued(&e))
	require.False(t, Catalogued((*TurnStarted)(nil)))
	type own struct{ TurnStarted }
	require.False(t, Catalogued(own{e}))
	require.False(t, Catalogued(&own{e}))
}

// FuzzCanonicalJSON: for any well-formed JSON in UTF-8, the canonical form
// is well-formed, decodes to the same value, is a fixed point, and
// encoding/json writes it unchanged inside a payload.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2]}`, ` "x\u2028" `, `"\ud83d\ude00\udc00"`, `[ 1 , "<&>" , {"":null} ]`, `"\/\b\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) || !utf8.Valid(in) {
			return
		}
		got, ok := canonicalJSON(in)
		if !ok {
			t.Fatalf("refused valid JSON %q", in)
		}
		if !json.Valid(got) {
			t.Fatalf("%q gave invalid %q", in, got)
		}
		requireSameJSON(t, in, got)
		again, _ := canonicalJSON(got)
		if !bytes.Equal(got, again) {
			t.Fatalf("not a fixed point: %q then %q", got, again)
		}
		p, err := Encode(SettingChanged{Key: "k", Value: got, At: decodeT0})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(p, append(append([]byte(`"value":`), got...), ',')) {
			t.Fatalf("Encode changed %q: %s", got, p)
		}
	})
}
