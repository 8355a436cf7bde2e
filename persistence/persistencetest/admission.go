package persistencetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// ownEvent is a caller's own type: it implements orchestration.Event but
// is not in the catalogue.
type ownEvent struct{ orchestration.TurnStarted }

func (ownEvent) EventType() string { return "own.event" }

// lookalike claims a catalogued name (its EventType is ProjectCreated's)
// without being a catalogued type.
type lookalike struct{ orchestration.ProjectCreated }

// randomID returns n bytes of lower-case letters and digits that no
// compression shrinks much (PostgreSQL compresses long index entries, so
// a repeated letter would hide the btree's limit), the same for a seed.
func randomID(seed uint64, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// nested returns a JSON value that nests depth arrays and objects, in
// turn, around a number: `{"a":[{"a":0}]}` is three levels deep.
func nested(depth int) json.RawMessage {
	var open, close strings.Builder
	for i := range depth {
		if i%2 == 0 {
			open.WriteString(`{"a":`)
		} else {
			open.WriteString(`[`)
		}
	}
	for i := depth - 1; i >= 0; i-- {
		if i%2 == 0 {
			close.WriteString(`}`)
		} else {
			close.WriteString(`]`)
		}
	}
	return json.RawMessage(open.String() + "0" + close.String())
}

// exportAll exports s's log.
func exportAll(t *testing.T, s *setup) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := s.store.Export(s.ctx, &buf, nil)
	require.NoError(t, err)
	return buf.Bytes()
}

// requireInvalid checks that err is an *InvalidEventError for event index
// of type typ whose reason is a *FieldError of field.
func requireInvalid(t *testing.T, err error, index int, typ, field string) {
	t.Helper()
	require.ErrorIs(t, err, persistence.ErrInvalidEvent)
	var ie *persistence.InvalidEventError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, index, ie.Index, "%v", err)
	require.Equal(t, typ, ie.Type, "%v", err)
	var fe *orchestration.FieldError
	require.ErrorAs(t, err, &fe, "%v", err)
	require.Equal(t, field, fe.Field, "%v", err)
}

// requireHead checks the store's head.
func requireHead(t *testing.T, s *setup, want int64) {
	t.Helper()
	head, err := s.store.Head(s.ctx)
	require.NoError(t, err)
	require.Equal(t, want, head)
}

// runAdmission checks what Append and Import let into the log: JSON values
// in one stored form, the nesting and id-length limits, only the
// catalogue's types, a command id bound to its events, and errors that
// stay readable whatever they quote.
func runAdmission(t *testing.T, h Harness) {
	t.Run("JSONValuesHaveOneStoredForm", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		cases := []struct{ given, stored string }{
			{"{ \"mode\" : \"dark\",\n\t\"size\" : 14 }\n", `{"mode":"dark","size":14}`},
			{`"<b>Tom & Jerry</b>"`, `"<b>Tom & Jerry</b>"`},
			{"\"line\u2028para\u2029\"", `"line\u2028para\u2029"`},
			{`"\u003cb\u003e \u0026 \/ \u00e9 \ud83d\ude00 \u2028"`, `"<b> & / é 😀 \u2028"`},
			{"[ 1.50 , -0 , 1e3 , true , false , null ]", `[1.50,-0,1e3,true,false,null]`},
			{`"tab\t \u0009 \u0001 \b\f\n\r \" \\ \u007f"`, `"tab\t \t \u0001 \b\f\n\r \" \\ ` + "\x7f" + `"`},
			{`"a lone \udc00 half"`, `"a lone \udc00 half"`},
			{`{"dup":1, "dup":2, "":{}}`, `{"dup":1,"dup":2,"":{}}`},
			{` "already \u0000 escaped" `, `"already \u0000 escaped"`},
		}
		var events []orchestration.Event
		for i, c := range cases {
			events = append(events, orchestration.SettingChanged{Key: fmt.Sprint("k", i), Value: json.RawMessage(c.given), At: at(i)})
		}
		recs, err := s.store.Append(s.ctx, nil, events...)
		require.NoError(t, err)
		replayed := collect(t, s.store.ReplayAll(s.ctx))
		settings, err := projection.NewReader(s.store).Settings(s.ctx)
		require.NoError(t, err)
		bySetting := map[string]string{}
		for _, st := range settings {
			bySetting[st.Key] = string(st.Value)
		}
		export := exportAll(t, s)
		for i, c := range cases {
			require.Equal(t, c.stored, string(recs[i].Event.(orchestration.SettingChanged).Value), "Append's record of %s", c.given)
			require.Equal(t, recs[i].Event, replayed[i].Event, "read back as appended: %s", c.given)
			require.Equal(t, c.stored, bySetting[fmt.Sprint("k", i)], "the projection of %s", c.given)
			require.Contains(t, string(export), `"value":`+c.stored+`,`, "the export of %s", c.given)
			var given, stored any
			require.NoError(t, json.Unmarshal([]byte(c.given), &given))
			require.NoError(t, json.Unmarshal([]byte(c.stored), &stored))
			require.Equal(t, given, stored, "the same JSON value")
		}
		requireVerified(t, s)

		// An import stores the same form, and exports the same bytes.
		other := h.setup(t)
		_, err = other.store.Import(other.ctx, bytes.NewReader(export), nil)
		require.NoError(t, err)
		require.Equal(t, string(export), string(exportAll(t, other)))
		requireVerified(t, other)

		// An export line in another spelling imports in the stored form.
		spelled := strings.Replace(strings.SplitN(string(export), "\n", 2)[0], `"value":{"mode":"dark","size":14}`, `"value": { "mode" : "dark" , "size" : 14 }`, 1)
		require.Contains(t, spelled, `"value": {`)
		third := h.setup(t)
		_, err = third.store.Import(third.ctx, strings.NewReader(spelled+"\n"), nil)
		require.NoError(t, err)
		require.Equal(t, strings.SplitN(string(export), "\n", 2)[0]+"\n", string(exportAll(t, third)))
		requireVerified(t, third)
	})

	t.Run("NestingLimit", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		first := orchestration.SettingChanged{Key: "flat", Value: json.RawMessage(`1`), At: T0}
		deepest := orchestration.SettingChanged{Key: "deep", Value: nested(persistence.MaxJSONDepth), At: at(1)}
		recs, err := s.store.Append(s.ctx, nil, first, deepest)
		require.NoError(t, err, "a value %d levels deep is admitted", persistence.MaxJSONDepth)
		replayed := collect(t, s.store.ReplayAll(s.ctx))
		require.Equal(t, recs[1].Event, replayed[1].Event)
		requireVerified(t, s)
		export := exportAll(t, s)
		other := h.setup(t)
		_, err = other.store.Import(other.ctx, bytes.NewReader(export), nil)
		require.NoError(t, err, "its export imports")
		require.Equal(t, recs[1].Event, collect(t, other.store.ReplayAll(other.ctx))[1].Event)
		requireVerified(t, other)

		for _, depth := range []int{persistence.MaxJSONDepth + 1, 9_999, 10_000, 10_001} {
			t.Run(fmt.Sprint(depth), func(t *testing.T) {
				_, err := s.store.Append(s.ctx, nil, first, orchestration.SettingChanged{Key: "deep", Value: nested(depth), At: T0})
				requireInvalid(t, err, 1, orchestration.TypeSettingChanged, "value")
				require.ErrorContains(t, err, fmt.Sprint(persistence.MaxJSONDepth))
				requireHead(t, s, 2)

				// Import applies the same limit.
				lines := strings.SplitAfter(string(export), "\n")
				deeper := strings.Replace(lines[1], string(nested(persistence.MaxJSONDepth)), string(nested(depth)), 1)
				require.NotEqual(t, lines[1], deeper)
				fresh := h.setup(t)
				_, err = fresh.store.Import(fresh.ctx, strings.NewReader(lines[0]+deeper), nil)
				require.ErrorIs(t, err, persistence.ErrInvalidEvent)
				var ie *persistence.ImportError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, 2, ie.Line, "%v", err)
				require.ErrorContains(t, err, fmt.Sprint(persistence.MaxJSONDepth))
				require.Less(t, len(err.Error()), 400, "a short message: %.400s", err)
				requireHead(t, fresh, 0)
			})
		}
	})

	t.Run("ForeignTypesAreRefused", func(t *testing.T) {
		t.Parallel()
		valid := orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: T0}
		refused := []struct {
			event orchestration.Event
			typ   string
			goTyp string
		}{
			{ownEvent{valid}, "own.event", "persistencetest.ownEvent"},
			{lookalike{orchestration.ProjectCreated{ProjectID: "p", Name: "n", WorkspaceRoot: "/w", At: T0}}, orchestration.TypeProjectCreated, "persistencetest.lookalike"},
			{&ownEvent{valid}, "own.event", "*persistencetest.ownEvent"},
		}
		bare, err := persistence.OpenWith(t.Context(), h.NewDSN(t), &persistence.Options{NoProjections: true})
		require.NoError(t, err)
		t.Cleanup(func() { bare.Close() })
		s := h.setup(t)
		for name, store := range map[string]*persistence.Store{"Projected": s.store, "Bare": bare} {
			for _, c := range refused {
				_, err := store.Append(s.ctx, nil, valid, c.event)
				require.ErrorIs(t, err, persistence.ErrInvalidEvent, "%s: %T", name, c.event)
				var ie *persistence.InvalidEventError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, 1, ie.Index)
				require.Equal(t, c.typ, ie.Type)
				require.ErrorContains(t, err, c.goTyp)

				tx, err := store.Client().Tx(s.ctx)
				require.NoError(t, err)
				_, err = store.AppendTx(s.ctx, tx, nil, valid, c.event)
				require.ErrorIs(t, err, persistence.ErrInvalidEvent, "%s: AppendTx %T", name, c.event)
				require.ErrorContains(t, err, c.goTyp)
				require.NoError(t, tx.Commit())
			}
			head, err := store.Head(s.ctx)
			require.NoError(t, err)
			require.Zero(t, head, "%s: nothing written", name)
		}

		// A nil pointer is a nil event, not a panic.
		_, err = s.store.Append(s.ctx, nil, valid, (*orchestration.TurnStarted)(nil))
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		require.ErrorContains(t, err, "nil event")

		// A pointer to a catalogued type is stored as its value, which is
		// what reads return.
		recs, err := s.store.Append(s.ctx, nil, &valid)
		require.NoError(t, err)
		require.Equal(t, valid, recs[0].Event)
		require.Equal(t, valid, collect(t, s.store.ReplayAll(s.ctx))[0].Event)

		if !h.Durable {
			return
		}
		// The refusal comes before the append lock: another store holding
		// it does not delay it.
		holder := h.open(t, s.dsn)
		tx, err := holder.Client().Tx(s.ctx)
		require.NoError(t, err)
		defer tx.Rollback()
		_, err = holder.AppendTx(s.ctx, tx, nil, valid)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err = s.store.Append(ctx, nil, ownEvent{valid})
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		require.Less(t, time.Since(start), time.Second)
	})

	t.Run("CommandIDIsBoundToItsEvents", func(t *testing.T) { commandIDIsBoundToItsEvents(t, h) })

	t.Run("IDLengthLimit", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		// Every indexed id at the limit, in random characters, and one
		// in two-byte runes: the limit counts bytes.
		id := func(seed uint64) string { return randomID(seed, persistence.MaxIDBytes) }
		wide := strings.Repeat("é", persistence.MaxIDBytes/2)
		require.Len(t, wide, persistence.MaxIDBytes)
		project, thread, turn, ref := id(1), id(2), id(3), id(4)
		events := []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: project, Name: "n", WorkspaceRoot: "/w", At: at(0)},
			orchestration.ThreadCreated{ThreadID: thread, ProjectID: project, Title: "t", Model: "m", At: at(1)},
			orchestration.TurnStarted{ThreadID: thread, TurnID: turn, At: at(2)},
			orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: id(5), Role: orchestration.RoleUser, Text: "hi", At: at(3)},
			orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: wide, Role: orchestration.RoleUser, Text: "hi", At: at(4)},
			orchestration.CheckpointCreated{ThreadID: thread, TurnID: turn, GitRef: ref, Message: "m", At: at(5)},
			orchestration.CheckpointReverted{ThreadID: thread, GitRef: ref, At: at(6)},
			orchestration.SettingChanged{Key: id(6), Value: json.RawMessage(`1`), At: at(7)},
		}
		opts := &persistence.AppendOpts{CommandID: id(7), CorrelationID: id(8), CausationID: id(9),
			ExpectedVersions: map[string]int64{orchestration.ThreadStream(thread): persistence.NoStream}}
		recs, err := s.store.Append(s.ctx, opts, events...)
		require.NoError(t, err, "ids of %d bytes are admitted", persistence.MaxIDBytes)
		replayed := collect(t, s.store.ReplayAll(s.ctx))
		require.Equal(t, recs, replayed)
		requireVerified(t, s)
		export := exportAll(t, s)
		other := h.setup(t)
		_, err = other.store.Import(other.ctx, bytes.NewReader(export), nil)
		require.NoError(t, err, "and their export imports")
		require.Equal(t, string(export), string(exportAll(t, other)))
		requireVerified(t, other)

		// One byte more, in any id, is refused.
		over := id(10) + "x"
		overWide := wide[:persistence.MaxIDBytes-2] + "ü" + "x" // a two-byte rune across the limit
		require.Equal(t, persistence.MaxIDBytes+1, len(overWide))
		require.True(t, utf8.ValidString(overWide))
		refused := []struct {
			event orchestration.Event
			field string
		}{
			{orchestration.ProjectCreated{ProjectID: over, Name: "n", WorkspaceRoot: "/w", At: T0}, "project_id"},
			{orchestration.ThreadCreated{ThreadID: "t", ProjectID: over, Title: "t", Model: "m", At: T0}, "project_id"},
			{orchestration.ThreadCreated{ThreadID: over, ProjectID: "p", Title: "t", Model: "m", At: T0}, "thread_id"},
			{orchestration.TurnStarted{ThreadID: "t", TurnID: over, At: T0}, "turn_id"},
			{orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: over, At: T0}, "message_id"},
			{orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: overWide, At: T0}, "message_id"},
			{orchestration.CheckpointCreated{ThreadID: "t", TurnID: "u", GitRef: over, At: T0}, "git_ref"},
			{orchestration.CheckpointReverted{ThreadID: "t", GitRef: over, At: T0}, "git_ref"},
			{orchestration.SettingChanged{Key: over, Value: json.RawMessage(`1`), At: T0}, "key"},
		}
		valid := orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: T0}
		for _, c := range refused {
			_, err := s.store.Append(s.ctx, nil, valid, c.event)
			requireInvalid(t, err, 1, c.event.EventType(), c.field)
			require.ErrorContains(t, err, fmt.Sprintf("%d bytes, more than the limit of %d", persistence.MaxIDBytes+1, persistence.MaxIDBytes))
		}
		for field, o := range map[string]*persistence.AppendOpts{
			"command_id":     {CommandID: over},
			"correlation_id": {CorrelationID: over},
			"causation_id":   {CausationID: over},
		} {
			_, err := s.store.Append(s.ctx, o, valid)
			requireInvalid(t, err, 0, orchestration.TypeTurnStarted, field)
		}
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:" + over + strings.Repeat("x", 16): 1}}, valid)
		require.Error(t, err, "an expected stream longer than any stream")
		require.NotErrorIs(t, err, persistence.ErrVersionConflict)
		requireHead(t, s, int64(len(events)))

		// Import applies the same limit, to ids in the data and around it.
		lines := strings.SplitAfter(string(export), "\n")
		for name, line := range map[string]string{
			"Data":     strings.ReplaceAll(lines[0], project, over),
			"Metadata": strings.Replace(lines[0], id(8), over, 1),
		} {
			fresh := h.setup(t)
			_, err := fresh.store.Import(fresh.ctx, strings.NewReader(line), nil)
			require.ErrorIs(t, err, persistence.ErrInvalidEvent, name)
			require.ErrorContains(t, err, "more than the limit of")
			requireHead(t, fresh, 0)
		}
	})

	t.Run("ErrorsClipLongValues", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		huge := randomID(11, 200<<10)
		limit := randomID(12, persistence.MaxIDBytes)
		_, err := s.store.Append(s.ctx, nil, orchestration.ThreadCreated{ThreadID: limit, ProjectID: "p", Title: "t", Model: "m", At: T0})
		require.NoError(t, err)
		short := func(t *testing.T, err error, size int) {
			t.Helper()
			require.Error(t, err)
			require.Less(t, len(err.Error()), 400, "%.600s", err)
			require.Contains(t, err.Error(), fmt.Sprintf("(%d bytes)", size))
		}
		stream := orchestration.ThreadStream(limit)
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{stream: 5}},
			orchestration.ThreadRenamed{ThreadID: limit, Title: "t", At: T0})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		var vc *persistence.VersionConflictError
		require.ErrorAs(t, err, &vc)
		require.Equal(t, stream, vc.Stream, "the error keeps the whole stream")
		short(t, err, len(stream))

		for name, c := range map[string]struct {
			opts  *persistence.AppendOpts
			event orchestration.Event
			size  int
		}{
			"Role":            {nil, orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.Role(huge), At: T0}, len(huge)},
			"ExpectedStream":  {&persistence.AppendOpts{ExpectedVersions: map[string]int64{huge: 1}}, orchestration.TurnStarted{ThreadID: "t", TurnID: "u", At: T0}, len(huge)},
			"ForeignType":     {nil, hugeTypeEvent{huge}, len(huge)},
			"NegativeVersion": {&persistence.AppendOpts{ExpectedVersions: map[string]int64{stream: -1}}, orchestration.TurnStarted{ThreadID: limit, TurnID: "u", At: T0}, len(stream)},
		} {
			_, err := s.store.Append(s.ctx, c.opts, c.event)
			t.Run(name, func(t *testing.T) { short(t, err, c.size) })
		}

		// The stream an append's database error names is clipped too.
		tx, err := s.store.Client().Tx(s.ctx)
		require.NoError(t, err)
		_, err = tx.ExecContext(s.ctx, "DROP TABLE projection_state")
		require.NoError(t, err)
		_, err = s.store.AppendTx(s.ctx, tx, nil, orchestration.TurnStarted{ThreadID: limit, TurnID: "u", At: T0})
		require.NoError(t, tx.Rollback())
		t.Run("StreamOfADatabaseError", func(t *testing.T) { short(t, err, len(stream)) })

		// Import quotes what a line holds, clipped.
		line := strings.SplitAfter(string(exportAll(t, s)), "\n")[0]
		var fields map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &fields))
		for name, edit := range map[string]func(map[string]any){
			"EventID":       func(m map[string]any) { m["event_id"] = huge },
			"Type":          func(m map[string]any) { m["type"] = huge },
			"OtherStream":   func(m map[string]any) { m["stream"] = "thread:" + huge },
			"StreamVersion": func(m map[string]any) { m["version"] = 7 },
		} {
			m := map[string]any{}
			for k, v := range fields {
				m[k] = v
			}
			edit(m)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			fresh := h.setup(t)
			_, err = fresh.store.Import(fresh.ctx, bytes.NewReader(b), nil)
			t.Run("Import"+name, func(t *testing.T) {
				require.Error(t, err)
				require.Less(t, len(err.Error()), 400, "%.600s", err)
			})
		}
	})
}

// hugeTypeEvent is a foreign type with a long type name.
type hugeTypeEvent struct{ name string }

func (e hugeTypeEvent) EventType() string   { return e.name }
func (hugeTypeEvent) StreamID() string      { return "settings" }
func (hugeTypeEvent) OccurredAt() time.Time { return T0 }
func (hugeTypeEvent) Validate() error       { return nil }
