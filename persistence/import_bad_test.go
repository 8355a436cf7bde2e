package persistence_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// exportLines returns the export of the first six events of the catalogue
// fixture (the last a message.added), line by line,
// each decoded into a map for editing.
func exportLines(t *testing.T) []map[string]any {
	t.Helper()
	ctx := t.Context()
	s, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(ctx, &persistence.AppendOpts{CommandID: "cmd", CorrelationID: "corr"}, persistencetest.Catalogue()[:6]...)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = s.Export(ctx, &buf, nil)
	require.NoError(t, err)
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		out = append(out, m)
	}
	require.Len(t, out, 6)
	return out
}

func encodeLines(t *testing.T, lines []map[string]any) []string {
	t.Helper()
	out := make([]string, len(lines))
	for i, m := range lines {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out[i] = string(b)
	}
	return out
}

// TestBadImportLines: each malformed line of an import is refused with an
// *ImportError naming its line and what is wrong, and nothing of the
// import is written, wherever in the file the line is.
func TestBadImportLines(t *testing.T) {
	t.Parallel()
	forEachDialect(t, badImportLines)
}

func badImportLines(t *testing.T, d dialectCase) {
	ctx := t.Context()
	s, err := persistence.Open(ctx, d.newDSN(t))
	require.NoError(t, err)
	defer s.Close()

	// Each case edits the export of six events; the broken line is the
	// third (line 3) unless the case says otherwise.
	type edit func(lines []map[string]any, raw []string) []string
	set := func(key string, v any) edit {
		return func(lines []map[string]any, _ []string) []string {
			lines[2][key] = v
			return encodeLines(t, lines)
		}
	}
	del := func(key string) edit {
		return func(lines []map[string]any, _ []string) []string {
			delete(lines[2], key)
			return encodeLines(t, lines)
		}
	}
	setData := func(key string, v any) edit {
		return func(lines []map[string]any, _ []string) []string {
			lines[2]["data"].(map[string]any)[key] = v
			return encodeLines(t, lines)
		}
	}
	raw := func(line string) edit {
		return func(_ []map[string]any, raw []string) []string {
			raw[2] = line
			return raw
		}
	}
	cases := []struct {
		name string
		edit edit
		line int
		want string
	}{
		{"NotJSON", raw("this is not JSON"), 3, "not an event object: invalid character 'h' in literal true (expecting 'r')"},
		{"Truncated", raw(`{"sequence":3,"event_id":"`), 3, "not an event object: unexpected EOF"},
		{"AnArray", raw(`[1,2,3]`), 3, "not an event object: json: cannot unmarshal array"},
		{"TwoValues", func(_ []map[string]any, raw []string) []string { raw[2] += " " + raw[2]; return raw }, 3, "more than one JSON value on the line"},
		{"UnknownKey", set("colour", "red"), 3, `not an event object: json: unknown field "colour"`},
		{"NoSequence", del("sequence"), 3, `"sequence" is missing`},
		{"NoVersion", del("version"), 3, `"version" is missing`},
		{"NoOccurredAt", del("occurred_at"), 3, `"occurred_at" is missing`},
		{"NoRecordedAt", del("recorded_at"), 3, `"recorded_at" is missing`},
		{"NoData", del("data"), 3, `"data" is missing`},
		{"NoType", del("type"), 3, `"type" is missing`},
		{"UnknownType", set("type", "thread.exploded"), 3, `unknown event type "thread.exploded" (written by a newer peon?)`},
		{"NewerSchemaVersion", set("schema_version", 2), 3, "schema_version 2 of thread.created: this build reads version 1 (exported by a newer peon?)"},
		{"ZeroSchemaVersion", set("schema_version", 0), 3, "schema_version 0 of thread.created: this build reads version 1"},
		{"SchemaVersionNotANumber", set("schema_version", "1"), 3, "not an event object: json: cannot unmarshal string"},
		{"BadEventID", set("event_id", "'; DROP TABLE events; --"), 3, `event_id "'; DROP TABLE events; --" is not a UUID`},
		{"ZeroSequence", set("sequence", 0), 3, "sequence 0 is not positive"},
		{"SequenceBackwards", set("sequence", 2), 3, "sequence 2 does not follow 2"},
		{"SequenceNotANumber", set("sequence", "3"), 3, "not an event object: json: cannot unmarshal string"},
		{"BadTime", set("occurred_at", "yesterday"), 3, `not an event object: parsing time "yesterday"`},
		{"DataNotAnObject", set("data", "x"), 3, "data: decode thread.created: json: cannot unmarshal string"},
		{"DataInvalid", setData("thread_id", ""), 3, `invalid event 2 (thread.created): field "thread_id" is empty`},
		{"DataWrongType", setData("model", 5), 3, "data: decode thread.created: json: cannot unmarshal number"},
		{"DataUnknownRole", func(lines []map[string]any, _ []string) []string {
			lines[5]["data"].(map[string]any)["role"] = "robot"
			return encodeLines(t, lines)
		}, 6, `invalid event 5 (message.added): field "role" is "robot", want user, assistant, system or tool`},
		{"StreamMismatch", set("stream", "thread:other"), 3, `stream "thread:other" does not match the data, whose stream is "thread:t1"`},
		{"OccurredAtMismatch", set("occurred_at", "2000-01-01T00:00:00Z"), 3, "occurred_at 2000-01-01T00:00:00Z differs from the data's at 2026-11-28T09:00:02.123456789Z"},
		{"VersionGap", set("version", 2), 3, "version 2 of thread:t1 does not follow 0"},
		{"NulInData", setData("title", "a\x00b"), 3, `invalid event 2 (thread.created): field "title" contains a NUL byte`},
		{"NulInCommandID", set("command_id", "c\x00"), 3, `invalid event 2 (thread.created): field "command_id" contains a NUL byte`},
		{"TooLong", raw(`{"sequence":3,"data":"` + strings.Repeat("x", 3<<20) + `"}`), 3, "longer than"},
		{"BadFirstLine", func(lines []map[string]any, _ []string) []string {
			lines[0]["sequence"] = -1
			return encodeLines(t, lines)
		}, 1, "sequence -1 is not positive"},
		{"BadLastLine", func(_ []map[string]any, raw []string) []string { raw[5] = raw[5][:len(raw[5])/2]; return raw }, 6, "not an event object: unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := exportLines(t)
			input := strings.Join(c.edit(lines, encodeLines(t, lines)), "\n") + "\n"
			_, err := s.Import(ctx, strings.NewReader(input), nil)
			require.Error(t, err)
			var ie *persistence.ImportError
			require.ErrorAs(t, err, &ie, "%v", err)
			require.Equal(t, c.line, ie.Line, "%v", err)
			require.ErrorContains(t, err, fmt.Sprintf("import: line %d: %s", c.line, c.want))
			head, err := s.Head(ctx)
			require.NoError(t, err)
			require.Zero(t, head, "nothing of a refused import is written")
		})
	}
	t.Run("DuplicateEventID", func(t *testing.T) {
		lines := exportLines(t)
		lines[3]["event_id"] = lines[1]["event_id"]
		_, err := s.Import(ctx, strings.NewReader(strings.Join(encodeLines(t, lines), "\n")), nil)
		require.Error(t, err)
		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.Zero(t, head)
	})
	t.Run("SequenceGap", func(t *testing.T) {
		// The log promises sequences without holes; an import may not make one.
		lines := exportLines(t)
		for i := 2; i < len(lines); i++ {
			lines[i]["sequence"] = float64(i + 8)
		}
		_, err := s.Import(ctx, strings.NewReader(strings.Join(encodeLines(t, lines), "\n")), nil)
		require.ErrorContains(t, err, "import: line 3: sequence 10 leaves a gap after 2; sequences run 1, 2, 3… without holes")
		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.Zero(t, head)
	})
	t.Run("NoSchemaVersionMeansVersion1", func(t *testing.T) {
		s, err := persistence.Open(ctx, d.newDSN(t))
		require.NoError(t, err)
		defer s.Close()
		lines := exportLines(t)
		for _, l := range lines {
			require.EqualValues(t, 1, l["schema_version"], "export writes the payload version")
			delete(l, "schema_version")
		}
		_, err = s.Import(ctx, strings.NewReader(strings.Join(encodeLines(t, lines), "\n")), nil)
		require.NoError(t, err)
		n := 0
		for rec, err := range s.ReplayAll(ctx) {
			require.NoError(t, err)
			require.Equal(t, orchestration.SchemaVersion, rec.SchemaVersion)
			n++
		}
		require.Equal(t, len(lines), n)
	})
	t.Run("BlankLinesAndCRLFAreFine", func(t *testing.T) {
		lines := encodeLines(t, exportLines(t))
		res, err := s.Import(ctx, strings.NewReader("\n"+strings.Join(lines, "\r\n\r\n")+"\r\n"), nil)
		require.NoError(t, err)
		require.Equal(t, int64(6), res.Events)
		verifyProjections(t, ctx, s)
	})
}
