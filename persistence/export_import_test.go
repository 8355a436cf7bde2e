package persistence_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// exported appends the catalogue to a fresh store and returns its export.
func exported(t testing.TB) []byte {
	t.Helper()
	s, err := persistence.OpenMemory(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Append(t.Context(), &persistence.AppendOpts{CommandID: "c1", CorrelationID: "corr"}, persistencetest.Catalogue()[:5]...)
	require.NoError(t, err)
	_, err = s.Append(t.Context(), nil, persistencetest.Catalogue()[5:]...)
	require.NoError(t, err)
	var buf bytes.Buffer
	n, err := s.Export(t.Context(), &buf, nil)
	require.NoError(t, err)
	require.EqualValues(t, len(persistencetest.Catalogue()), n)
	return buf.Bytes()
}

func TestExport(t *testing.T) {
	t.Parallel()

	t.Run("OneObjectPerLineInOrder", func(t *testing.T) {
		t.Parallel()
		out := exported(t)
		sc := bufio.NewScanner(bytes.NewReader(out))
		var seq int64
		for sc.Scan() {
			var line map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			for _, k := range []string{"sequence", "event_id", "stream", "version", "type", "schema_version", "occurred_at", "recorded_at", "command_id", "correlation_id", "causation_id", "data"} {
				require.Contains(t, line, k)
			}
			require.Len(t, line, 12)
			require.Equal(t, "1", string(line["schema_version"]))
			seq++
			require.Equal(t, fmt.Sprint(seq), string(line["sequence"]))
			require.Equal(t, "null", string(line["causation_id"]))
		}
		require.EqualValues(t, len(persistencetest.Catalogue()), seq)
		first, _, _ := bytes.Cut(out, []byte("\n"))
		require.Contains(t, string(first), `"command_id":"c1","correlation_id":"corr"`)
		require.Contains(t, string(first), `"data":{"project_id":"p1","name":"peon","workspace_root":"/src/peon","at":"2026-11-28T09:00:00.123456789Z"}}`)
	})

	t.Run("UndecodableRowStopsIt", func(t *testing.T) {
		t.Parallel()
		path := dbtest.SQLiteFile(t)
		s, err := persistence.Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Append(t.Context(), nil, persistencetest.Catalogue()...)
		require.NoError(t, err)
		_, err = s.Client().ExecContext(t.Context(), "UPDATE events SET payload = '{broken' WHERE sequence = 3")
		require.NoError(t, err)
		var buf bytes.Buffer
		n, err := s.Export(t.Context(), &buf, nil)
		var de *persistence.DecodeError
		require.ErrorAs(t, err, &de)
		require.EqualValues(t, 3, de.Sequence)
		require.EqualValues(t, 2, n)
	})

	t.Run("StringsEscapeLikeEncodingJSON", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{"plain", "quote\" back\\slash", "ctl\x00\x01\n\r\t\x1f", "ünï ✓", "bad\xffutf8", "sep\u2028\u2029"} {
			rec := persistence.Recorded{Sequence: 1, EventID: s, StreamID: "settings", Type: orchestration.TypeSettingChanged,
				Event: orchestration.SettingChanged{Key: "k", Value: json.RawMessage("1"), At: persistencetest.T0}}
			line, err := persistence.AppendJSONL(nil, &rec)
			require.NoError(t, err)
			var back struct {
				EventID string `json:"event_id"`
			}
			require.NoError(t, json.Unmarshal(line, &back), "%q", line)
			want, _ := json.Marshal(s)
			var wantBack string
			require.NoError(t, json.Unmarshal(want, &wantBack))
			require.Equal(t, wantBack, back.EventID)
		}
	})
}

func TestImport(t *testing.T) {
	t.Parallel()

	open := func(t *testing.T) *persistence.Store {
		s, err := persistence.Open(t.Context(), dbtest.SQLiteFile(t))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("RoundTripIsByteIdentical", func(t *testing.T) {
		t.Parallel()
		out := exported(t)
		s := open(t)
		res, err := s.Import(t.Context(), bytes.NewReader(out), nil)
		require.NoError(t, err)
		require.EqualValues(t, len(persistencetest.Catalogue()), res.Events)
		require.EqualValues(t, 1, res.First)
		require.Equal(t, res.Events, res.Last)
		var again bytes.Buffer
		_, err = s.Export(t.Context(), &again, nil)
		require.NoError(t, err)
		require.Equal(t, string(out), again.String())

		// Appends go on after the imported log, and idempotency knows the
		// imported command ids.
		recs, err := s.Append(t.Context(), &persistence.AppendOpts{CommandID: "c1"}, persistencetest.Catalogue()[:5]...)
		require.NoError(t, err)
		require.EqualValues(t, 1, recs[0].Sequence)
		_, err = s.Append(t.Context(), &persistence.AppendOpts{CommandID: "c1"}, persistencetest.Catalogue()[0])
		require.ErrorIs(t, err, persistence.ErrCommandConflict)
		recs, err = s.Append(t.Context(), nil, orchestration.ProjectRenamed{ProjectID: "p1", Name: "x", At: persistencetest.T0})
		require.NoError(t, err)
		require.Equal(t, res.Last+1, recs[0].Sequence)
		require.EqualValues(t, 4, recs[0].StreamVersion)
	})

	t.Run("NonEmptyRefusedUnlessForced", func(t *testing.T) {
		t.Parallel()
		out := exported(t)
		s := open(t)
		_, err := s.Append(t.Context(), nil, persistencetest.Catalogue()[0])
		require.NoError(t, err)
		_, err = s.Import(t.Context(), bytes.NewReader(out), nil)
		require.ErrorIs(t, err, persistence.ErrNotEmpty)

		_, err = s.Import(t.Context(), bytes.NewReader(out), &persistence.ImportOpts{Force: true})
		var ie *persistence.ImportError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, 1, ie.Line)
		require.ErrorContains(t, err, "not after the store's last sequence 1")
		head, err := s.Head(t.Context())
		require.NoError(t, err)
		require.EqualValues(t, 1, head)
	})

	t.Run("ForcedContinuesStreams", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.Append(t.Context(), nil, persistencetest.Catalogue()[0])
		require.NoError(t, err)
		line := `{"sequence":2,"event_id":"0190f4a2-7c3e-7000-8000-000000000001","stream":"project:p1","version":2,"type":"project.renamed","schema_version":1,"occurred_at":"2026-11-28T09:00:00Z","recorded_at":"2026-11-28T09:00:01Z","command_id":null,"correlation_id":null,"causation_id":null,"data":{"project_id":"p1","name":"n","at":"2026-11-28T09:00:00Z"}}`
		res, err := s.Import(t.Context(), strings.NewReader(line+"\n"), &persistence.ImportOpts{Force: true})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Events)
		head, err := s.Head(t.Context())
		require.NoError(t, err)
		require.EqualValues(t, 2, head)
	})

	t.Run("BadLineWritesNothingAndNamesItsLine", func(t *testing.T) {
		t.Parallel()
		good := strings.Split(strings.TrimSuffix(string(exported(t)), "\n"), "\n")
		swap := func(i int, f func(string) string) string {
			lines := append([]string(nil), good...)
			lines[i] = f(lines[i])
			return strings.Join(lines, "\n") + "\n"
		}
		for name, tc := range map[string]struct {
			in   string
			line int
			msg  string
		}{
			"BrokenJSON": {swap(3, func(l string) string { return l[:len(l)-2] }), 4, "not an event object"},
			"UnknownType": {swap(2, func(l string) string {
				return strings.Replace(l, `"type":"thread.created"`, `"type":"thread.exploded"`, 1)
			}), 3, "unknown event type"},
			"InvalidData":      {swap(2, func(l string) string { return strings.Replace(l, `"title":"Fix the build"`, `"title":""`, 1) }), 3, `"title" is empty`},
			"WrongStream":      {swap(2, func(l string) string { return strings.Replace(l, `"stream":"thread:t1"`, `"stream":"thread:t2"`, 1) }), 3, "does not match"},
			"SequenceBackward": {swap(5, func(l string) string { return strings.Replace(l, `"sequence":6`, `"sequence":5`, 1) }), 6, "does not follow 5"},
			"VersionGap":       {swap(5, func(l string) string { return strings.Replace(l, `"version":4`, `"version":5`, 1) }), 6, "version 5 of thread:t1 does not follow 3"},
			"UnknownField":     {swap(0, func(l string) string { return strings.Replace(l, `{"sequence"`, `{"extra":1,"sequence"`, 1) }), 1, "unknown field"},
			"MissingSequence":  {swap(0, func(l string) string { return strings.Replace(l, `"sequence":1,`, ``, 1) }), 1, `"sequence" is missing`},
			"BadEventID":       {swap(1, func(l string) string { return strings.Replace(l, `"event_id":"`, `"event_id":"x`, 1) }), 2, "not a UUID"},
			"OccurredAtDiffers": {swap(1, func(l string) string {
				return strings.Replace(l, `"occurred_at":"2026-11-28T09:00:01.123456789Z"`, `"occurred_at":"2026-11-28T09:00:02Z"`, 1)
			}), 2, "differs from the data"},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				require.NotEqual(t, strings.Join(good, "\n")+"\n", tc.in, "the case changed nothing")
				s := open(t)
				_, err := s.Import(t.Context(), strings.NewReader(tc.in), nil)
				var ie *persistence.ImportError
				require.True(t, errors.As(err, &ie), "%v", err)
				require.Equal(t, tc.line, ie.Line, "%v", err)
				require.ErrorContains(t, err, tc.msg)
				head, err := s.Head(t.Context())
				require.NoError(t, err)
				require.Zero(t, head)
			})
		}
	})

	t.Run("BadLineAfterManyChunksWritesNothing", func(t *testing.T) {
		t.Parallel()
		src, err := persistence.OpenMemory(t.Context())
		require.NoError(t, err)
		defer src.Close()
		_, err = src.Append(t.Context(), nil, persistencetest.Deltas("t1", 1200)...)
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = src.Export(t.Context(), &buf, nil)
		require.NoError(t, err)
		lines := strings.SplitAfter(buf.String(), "\n")
		lines[1150] = strings.Replace(lines[1150], `"type":"message.delta"`, `"type":"message.deleted"`, 1)

		s := open(t)
		var progress []int64
		_, err = s.Import(t.Context(), strings.NewReader(strings.Join(lines, "")), &persistence.ImportOpts{
			Progress: func(n, _ int64) { progress = append(progress, n) }})
		var ie *persistence.ImportError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, 1151, ie.Line)
		require.Equal(t, []int64{512, 1024}, progress, "two chunks were inserted before the bad line")
		head, err := s.Head(t.Context())
		require.NoError(t, err)
		require.Zero(t, head)
		n, err := s.Export(t.Context(), &buf, nil)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("DuplicateEventIDWritesNothing", func(t *testing.T) {
		t.Parallel()
		lines := strings.Split(strings.TrimSuffix(string(exported(t)), "\n"), "\n")
		var first struct {
			EventID string `json:"event_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
		var second struct {
			EventID string `json:"event_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
		lines[1] = strings.Replace(lines[1], second.EventID, first.EventID, 1)
		s := open(t)
		_, err := s.Import(t.Context(), strings.NewReader(strings.Join(lines, "\n")), nil)
		require.Error(t, err)
		head, err := s.Head(t.Context())
		require.NoError(t, err)
		require.Zero(t, head)
	})
}

// FuzzImport feeds arbitrary input to Import: it either imports events
// that export back to lines Import accepts, or fails writing nothing.
func FuzzImport(f *testing.F) {
	for _, line := range strings.SplitAfter(string(exported(f)), "\n") {
		if line != "" {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte(`{"sequence":1}`))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := persistence.OpenWith(t.Context(), ":memory:", &persistence.Options{NoProjections: true})
		require.NoError(t, err)
		defer s.Close()
		res, err := s.Import(t.Context(), bytes.NewReader(in), nil)
		head, herr := s.Head(t.Context())
		require.NoError(t, herr)
		if err != nil {
			require.Zero(t, head, "a failed import wrote events")
			return
		}
		require.Equal(t, res.Last, head)
		var out bytes.Buffer
		n, err := s.Export(t.Context(), &out, nil)
		require.NoError(t, err)
		require.Equal(t, res.Events, n)
		s2, err := persistence.OpenWith(t.Context(), ":memory:", &persistence.Options{NoProjections: true})
		require.NoError(t, err)
		defer s2.Close()
		_, err = s2.Import(t.Context(), bytes.NewReader(out.Bytes()), nil)
		require.NoError(t, err)
		var again bytes.Buffer
		_, err = s2.Export(t.Context(), &again, nil)
		require.NoError(t, err)
		require.Equal(t, out.String(), again.String())
	})
}
