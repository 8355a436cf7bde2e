package persistence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// requiredFields are the validation rules of the catalogue: the fields
// (JSON names) that may not be empty, per type. Every type also needs
// `at`; message.added a known role; setting.changed a JSON value.
var requiredFields = map[string][]string{
	orchestration.TypeProjectCreated:     {"project_id", "name", "workspace_root"},
	orchestration.TypeProjectRenamed:     {"project_id", "name"},
	orchestration.TypeProjectDeleted:     {"project_id"},
	orchestration.TypeThreadCreated:      {"thread_id", "project_id", "title", "model"},
	orchestration.TypeThreadRenamed:      {"thread_id", "title"},
	orchestration.TypeThreadArchived:     {"thread_id"},
	orchestration.TypeThreadDeleted:      {"thread_id"},
	orchestration.TypeTurnStarted:        {"thread_id", "turn_id"},
	orchestration.TypeTurnCompleted:      {"thread_id", "turn_id"},
	orchestration.TypeTurnFailed:         {"thread_id", "turn_id", "error"},
	orchestration.TypeTurnInterrupted:    {"thread_id", "turn_id"},
	orchestration.TypeMessageAdded:       {"thread_id", "turn_id", "message_id", "role"},
	orchestration.TypeMessageDelta:       {"thread_id", "turn_id", "message_id"},
	orchestration.TypeMessageCompleted:   {"thread_id", "turn_id", "message_id"},
	orchestration.TypeCheckpointCreated:  {"thread_id", "turn_id", "git_ref"},
	orchestration.TypeCheckpointReverted: {"thread_id", "git_ref"},
	orchestration.TypeSettingChanged:     {"key", "value"},
}

// oneOfEach returns a valid event of every catalogued type.
func oneOfEach(t *testing.T) []orchestration.Event {
	t.Helper()
	seen := map[string]bool{}
	var out []orchestration.Event
	for _, e := range persistencetest.Catalogue() {
		if !seen[e.EventType()] {
			seen[e.EventType()] = true
			out = append(out, e)
		}
	}
	require.Len(t, out, len(orchestration.Types()))
	return out
}

// withField returns a copy of e with the field of JSON name `name` set to v.
func withField(e orchestration.Event, name string, v any) orchestration.Event {
	c := reflect.New(reflect.TypeOf(e)).Elem()
	c.Set(reflect.ValueOf(e))
	for i := range c.NumField() {
		if jsonName(c.Type().Field(i)) == name {
			f := c.Field(i)
			f.Set(reflect.ValueOf(v).Convert(f.Type()))
		}
	}
	return c.Interface().(orchestration.Event)
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// TestBadInputEveryValidationRule breaks each field of each catalogued
// type in turn. A required field left empty is refused by Append with an
// error naming the event's index, type and field, and nothing of the
// batch is written; a field the rules allow to be empty is accepted.
func TestBadInputEveryValidationRule(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	valid := orchestration.ProjectCreated{ProjectID: "ok", Name: "ok", WorkspaceRoot: "/ok", At: persistencetest.T0}

	type badCase struct {
		name    string
		event   orchestration.Event
		field   string
		problem string
	}
	var cases []badCase
	rules := 0
	for _, e := range oneOfEach(t) {
		typ := e.EventType()
		req := map[string]bool{"at": true}
		for _, f := range requiredFields[typ] {
			req[f] = true
		}
		rt := reflect.TypeOf(e)
		for i := range rt.NumField() {
			f := rt.Field(i)
			name := jsonName(f)
			var zero any
			problem := "is empty"
			switch {
			case name == "at":
				zero, problem = time.Time{}, "is not set"
			case name == "role":
				zero, problem = orchestration.Role(""), `is "", want user, assistant, system or tool`
			case name == "value":
				zero, problem = json.RawMessage(nil), "is empty (use JSON null to clear a setting)"
			case f.Type.Kind() == reflect.String:
				zero = ""
			default:
				continue // a bool: any value is valid
			}
			broken := withField(e, name, zero)
			if !req[name] {
				require.NoError(t, broken.Validate(), "%s with an empty %s is valid", typ, name)
				continue
			}
			rules++
			cases = append(cases, badCase{typ + "/" + name, broken, name, problem})
		}
	}
	cases = append(cases,
		badCase{"message.added/role-unknown", orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: "robot", At: persistencetest.T0},
			"role", `is "robot", want user, assistant, system or tool`},
		badCase{"setting.changed/value-not-json", orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`{"a":`), At: persistencetest.T0},
			"value", "is not valid JSON"},
		badCase{"setting.changed/value-two-values", orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1 2`), At: persistencetest.T0},
			"value", "is not valid JSON"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The broken event second, behind a valid one, with a command id.
			_, err := s.Append(ctx, &persistence.AppendOpts{CommandID: "cmd-" + c.name}, valid, c.event)
			require.ErrorIs(t, err, persistence.ErrInvalidEvent)
			want := fmt.Sprintf("invalid event 1 (%s): field %q %s", c.event.EventType(), c.field, c.problem)
			require.EqualError(t, err, want)
			var ie *persistence.InvalidEventError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, 1, ie.Index)
			require.Equal(t, c.event.EventType(), ie.Type)
			var fe *orchestration.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, c.field, fe.Field)
		})
	}
	t.Run("NilEvent", func(t *testing.T) {
		_, err := s.Append(ctx, nil, valid, nil)
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		require.EqualError(t, err, "invalid event 1: nil event")
	})
	t.Run("NegativeExpectedVersion", func(t *testing.T) {
		_, err := s.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"project:ok": -1}}, valid)
		require.EqualError(t, err, "append: expected version -1 of project:ok is negative")
	})
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "nothing of a refused batch is written")
	// A refused command id was not used up.
	recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: "cmd-" + cases[0].name}, valid)
	require.NoError(t, err)
	require.Equal(t, int64(1), recs[0].Sequence)
	t.Logf("%d validation rules (%d cases) refused with their field named", rules, len(cases))
}

// TestBadInputOversizedPayload: the limit is on the encoded payload,
// MaxPayloadBytes, inclusive.
func TestBadInputOversizedPayload(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	msg := func(text string) orchestration.Event {
		return orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: orchestration.RoleUser, Text: text, At: persistencetest.T0}
	}
	base, err := orchestration.Encode(msg(""))
	require.NoError(t, err)
	fits := strings.Repeat("a", persistence.MaxPayloadBytes-len(base))

	_, err = s.Append(ctx, nil, msg(fits+"a"))
	require.ErrorIs(t, err, persistence.ErrInvalidEvent)
	require.EqualError(t, err, fmt.Sprintf("invalid event 0 (message.added): payload is %d bytes, more than the limit of %d", persistence.MaxPayloadBytes+1, persistence.MaxPayloadBytes))

	// Escaping counts: 200,000 control characters are 1,200,000 bytes of
	// JSON (\u0001 each); '<' is not escaped (no HTML escaping).
	_, err = s.Append(ctx, nil, msg(strings.Repeat("\x01", 200_000)))
	require.ErrorContains(t, err, "payload is 1200")

	// A big setting value, second in its batch.
	big := orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`"` + strings.Repeat("x", persistence.MaxPayloadBytes) + `"`), At: persistencetest.T0}
	_, err = s.Append(ctx, nil, msg("small"), big)
	require.ErrorContains(t, err, "invalid event 1 (setting.changed): payload is ")
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)

	// Exactly the limit is stored and read back whole.
	recs, err := s.Append(ctx, nil, msg(fits))
	require.NoError(t, err)
	require.Len(t, recs[0].Payload, persistence.MaxPayloadBytes)
	for rec, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		require.Equal(t, fits, rec.Event.(orchestration.MessageAdded).Text)
	}
}

// TestBadInputMixedBatch: one invalid event among valid ones refuses the
// whole batch; the valid ones alone then go in.
func TestBadInputMixedBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.OpenDir(ctx, t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	good := persistencetest.Catalogue()[:4]
	bad := orchestration.TurnStarted{ThreadID: "t1", At: persistencetest.T0}
	mixed := append(append([]orchestration.Event{}, good[:3]...), bad, good[3])
	_, err = s.Append(ctx, nil, mixed...)
	require.EqualError(t, err, `invalid event 3 (turn.started): field "turn_id" is empty`)
	for _, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		t.Fatal("a refused batch wrote an event")
	}
	recs, err := s.Append(ctx, nil, good...)
	require.NoError(t, err)
	require.Equal(t, int64(1), recs[0].Sequence)
	require.Equal(t, int64(4), recs[3].Sequence)
}

// plantRow writes an events row behind the store's back.
func plantRow(t *testing.T, path string, seq int64, stream string, version int64, typ, payload string) {
	t.Helper()
	_, err := rawDB(t, path).Exec(`INSERT INTO events (sequence, event_id, stream_id, stream_version, event_type, schema_version, payload, occurred_at, recorded_at)
		VALUES (?, ?, ?, ?, ?, 1, ?, '2026-11-28 09:00:00+00:00', '2026-11-28 09:00:00+00:00')`,
		seq, fmt.Sprintf("00000000-0000-7000-8000-%012d", seq), stream, version, typ, payload)
	require.NoError(t, err)
}

// TestBadStoredRows: rows that cannot be decoded (an unknown type, broken
// JSON, JSON of the wrong shape, JSON that decodes into an event Append
// would refuse) are yielded as *DecodeError naming their
// sequence and type, and every read goes on past them; the store still
// opens (projections catch up past them) and appends.
func TestBadStoredRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, persistence.DBFileName)
	s, err := persistence.OpenDir(ctx, dir)
	require.NoError(t, err)
	_, err = s.Append(ctx, nil, persistencetest.Catalogue()[:3]...) // project 1, 2; thread 3
	require.NoError(t, err)
	require.NoError(t, s.Close())

	bad := map[int64]struct{ typ, payload, why string }{
		4: {"thread.exploded", `{"thread_id":"t1"}`, `unknown event type "thread.exploded"`},
		5: {orchestration.TypeThreadRenamed, `{"thread_id":"t1","title":`, "decode thread.renamed: unexpected end of JSON input"},
		6: {orchestration.TypeThreadRenamed, `{"thread_id":5}`, "decode thread.renamed: json: cannot unmarshal number"},
		7: {orchestration.TypeThreadRenamed, `not json`, "decode thread.renamed: invalid character"},
		// JSON that decodes into an event Append would have refused.
		8:  {orchestration.TypeThreadRenamed, `{}`, `stored thread.renamed is not valid: field "thread_id" is empty`},
		9:  {orchestration.TypeMessageAdded, `null`, `stored message.added is not valid: field "thread_id" is empty`},
		10: {orchestration.TypeMessageAdded, `{"thread_id":"t1","turn_id":"u","message_id":"m","role":"robot","at":"2026-11-28T09:00:00Z"}`, `stored message.added is not valid: field "role" is "robot"`},
		11: {orchestration.TypeThreadRenamed, `{"thread_id":"t1","title":"no time"}`, `stored thread.renamed is not valid: field "at" is not set`},
		12: {orchestration.TypeThreadRenamed, `{"thread_id":"t2","title":"elsewhere","at":"2026-11-28T09:00:00Z"}`, "stored in stream thread:t1, but the event belongs to thread:t2"},
		// A payload version this build does not know, though it decodes.
		13: {orchestration.TypeThreadRenamed, `{"thread_id":"t1","title":"from the future","at":"2026-11-28T09:00:00Z"}`, "schema_version 2: this build reads version 1 (written by a newer peon?)"},
	}
	for seq := int64(4); seq <= 13; seq++ {
		plantRow(t, path, seq, "thread:t1", seq-2, bad[seq].typ, bad[seq].payload)
	}
	_, err = rawDB(t, path).Exec("UPDATE events SET schema_version = 2 WHERE sequence = 13")
	require.NoError(t, err)

	s, err = persistence.OpenDir(ctx, dir)
	require.NoError(t, err, "undecodable rows do not stop the store from opening")
	defer s.Close()
	recs, err := s.Append(ctx, nil, orchestration.ThreadRenamed{ThreadID: "t1", Title: "after", At: persistencetest.T0})
	require.NoError(t, err)
	require.Equal(t, int64(14), recs[0].Sequence)
	require.Equal(t, int64(12), recs[0].StreamVersion)

	check := func(t *testing.T, seq func(func(persistence.Recorded, error) bool), wantSeqs []int64) {
		var got []int64
		for rec, err := range seq {
			got = append(got, rec.Sequence)
			if b, isBad := bad[rec.Sequence]; isBad {
				var de *persistence.DecodeError
				require.ErrorAs(t, err, &de, "sequence %d", rec.Sequence)
				require.Equal(t, rec.Sequence, de.Sequence)
				require.Equal(t, b.typ, de.Type)
				require.ErrorContains(t, err, fmt.Sprintf("decode event %d (%s): ", rec.Sequence, b.typ))
				require.ErrorContains(t, err, b.why)
				require.Nil(t, rec.Event)
				require.Equal(t, b.payload, string(rec.Payload), "the raw payload comes with the error")
				continue
			}
			require.NoError(t, err)
			require.NotNil(t, rec.Event)
		}
		require.Equal(t, wantSeqs, got)
	}
	t.Run("ReplayAll", func(t *testing.T) { check(t, s.ReplayAll(ctx), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}) })
	t.Run("ReplayFrom", func(t *testing.T) { check(t, s.ReplayFrom(ctx, 5), []int64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}) })
	t.Run("ReadStream", func(t *testing.T) {
		check(t, s.ReadStream(ctx, "thread:t1", 1), []int64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	})
	t.Run("Subscribe", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var got []int64
		for rec, err := range s.Subscribe(sctx, 0) {
			if _, isBad := bad[rec.Sequence]; isBad {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			got = append(got, rec.Sequence)
			if rec.Sequence == 14 {
				break
			}
		}
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, got)
	})
	t.Run("Verify", func(t *testing.T) { verifyReportsDecodeErrors(t, ctx, s, []int64{4, 5, 6, 7, 8, 9, 10, 11, 12, 13}) })
}

// TestBadMigrationDir: a migration directory whose files do not match its
// atlas.sum is refused with ErrMigration naming atlas.sum, on a new file
// and on a migrated one, and nothing is changed.
func TestBadMigrationDir(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cases := map[string]func(*testing.T) atlasmigrate.Dir{
		"EditedFile": func(t *testing.T) atlasmigrate.Dir {
			return migrationDirWith(t, func(name string, b []byte) []byte {
				if strings.HasSuffix(name, ".sql") {
					return append(b, []byte("\nCREATE TABLE tampered (x integer);\n")...)
				}
				return b
			})
		},
		"EditedSum": func(t *testing.T) atlasmigrate.Dir {
			return migrationDirWith(t, func(name string, b []byte) []byte {
				if name == "atlas.sum" {
					return []byte(strings.Replace(string(b), "h1:", "h1:AAAA", 1))
				}
				return b
			})
		},
		"MissingSum": func(t *testing.T) atlasmigrate.Dir {
			return migrationDirWith(t, func(name string, b []byte) []byte {
				if name == "atlas.sum" {
					return nil
				}
				return b
			})
		},
		"AddedFileNotInSum": func(t *testing.T) atlasmigrate.Dir {
			dir := migrationDirWith(t, func(_ string, b []byte) []byte { return b })
			require.NoError(t, dir.WriteFile("29991231000000_sneaky.sql", []byte("CREATE TABLE sneaky (x integer);\n")))
			return dir
		},
	}
	for name, dirOf := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, existing := range []bool{false, true} {
				path := dbtest.SQLiteFile(t)
				var before string
				if existing {
					s, err := persistence.Open(ctx, path)
					require.NoError(t, err)
					_, err = s.Append(ctx, nil, persistencetest.Catalogue()[:2]...)
					require.NoError(t, err)
					require.NoError(t, s.Close())
					before = schemaDump(t, path)
				}
				_, err := persistence.OpenWithMigrationDir(ctx, path, nil, dirOf(t))
				require.ErrorIs(t, err, persistence.ErrMigration)
				require.ErrorContains(t, err, "atlas.sum")
				require.ErrorContains(t, err, "open "+path+": ")
				if existing {
					require.Equal(t, before, schemaDump(t, path), "nothing changed")
				} else {
					require.Zero(t, queryInt(t, path, "SELECT COUNT(*) FROM sqlite_master"), "no table created")
				}
			}
		})
	}
}

// TestBadNewerDatabase: a database recording a migration this build does
// not have (written by a newer peon), one whose migration failed half-way,
// and one whose applied migration had other contents are refused with
// ErrMigration and a message that says what to do; nothing is changed.
func TestBadNewerDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cases := []struct {
		name, sql, want string
	}{
		{"Newer", `INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version)
			VALUES ('29991231000000', 'future', 2, 1, 1, '2999-12-31 00:00:00+00:00', 1, '', '', 'x', NULL, 'peon-future')`,
			"the database records migration 29991231000000, which this build does not have: it was written by a newer peon; upgrade peon to open it"},
		{"FailedEarlier", `UPDATE atlas_schema_revisions SET applied = 1, error = 'boom'`,
			"failed earlier (1 of "},
		{"OtherContents", `UPDATE atlas_schema_revisions SET hash = 'different'`,
			"was applied with other contents than this build's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := dbtest.SQLiteFile(t)
			s, err := persistence.Open(ctx, path)
			require.NoError(t, err)
			_, err = s.Append(ctx, nil, persistencetest.Catalogue()[:2]...)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			_, err = rawDB(t, path).Exec(c.sql)
			require.NoError(t, err)
			before := schemaDump(t, path)
			_, err = persistence.Open(ctx, path)
			require.ErrorIs(t, err, persistence.ErrMigration)
			require.ErrorContains(t, err, c.want)
			require.Equal(t, before, schemaDump(t, path), "nothing changed")
		})
	}
}

// schemaDump describes a SQLite file's schema, revisions and row counts.
func schemaDump(t *testing.T, path string) string {
	t.Helper()
	db := rawDB(t, path)
	var sb strings.Builder
	rows, err := db.Query("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var typ, name, sql string
		require.NoError(t, rows.Scan(&typ, &name, &sql))
		fmt.Fprintf(&sb, "%s %s %s\n", typ, name, sql)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for _, tb := range tables {
		var n int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM `"+tb+"`").Scan(&n))
		fmt.Fprintf(&sb, "%s: %d rows\n", tb, n)
	}
	rows, err = db.Query("SELECT version, hash, applied, total, COALESCE(error, '') FROM atlas_schema_revisions ORDER BY version")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var v, h, e string
		var a, tot int
		require.NoError(t, rows.Scan(&v, &h, &a, &tot, &e))
		fmt.Fprintf(&sb, "rev %s %s %d/%d %q\n", v, h, a, tot, e)
	}
	return sb.String()
}

// TestBadPaths: the usual mistakes in a database path are refused with
// an error that says what is wrong, and nothing is created or changed.
func TestBadPaths(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		_, err := persistence.Open(ctx, "")
		require.EqualError(t, err, "open: empty database path or URL")
		_, err = persistence.OpenDir(ctx, "")
		require.EqualError(t, err, "open: empty data directory")
	})
	t.Run("IsADirectory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, err := persistence.Open(ctx, dir)
		require.EqualError(t, err, fmt.Sprintf("open %s: is a directory, not a database file (use OpenDir or %s)", dir, filepath.Join(dir, "peon.db")))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
	t.Run("MissingDirectory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "no", "such")
		path := filepath.Join(dir, "peon.db")
		_, err := persistence.Open(ctx, path)
		require.EqualError(t, err, fmt.Sprintf("open %s: the directory %s does not exist", path, dir))
		require.NoDirExists(t, filepath.Dir(dir))
		// OpenDir creates it.
		s, err := persistence.OpenDir(ctx, dir)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.FileExists(t, path)
	})
	t.Run("DataDirectoryUnderAFile", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
		_, err := persistence.OpenDir(ctx, filepath.Join(file, "data"))
		require.ErrorContains(t, err, "open: create data directory: ")
		require.ErrorContains(t, err, "not a directory")
		_, err = persistence.Open(ctx, filepath.Join(file, "peon.db"))
		require.ErrorContains(t, err, "not a directory")
	})
	corrupt := map[string]func(t *testing.T, path string){
		"Text": func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("this is not a database, it is a shopping list\n"), 0o600))
		},
		"RandomBytes": func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7919 + i>>8)
			}
			require.NoError(t, os.WriteFile(path, b, 0o600))
		},
		"DamagedHeader": func(t *testing.T, path string) {
			s, err := persistence.Open(ctx, path)
			require.NoError(t, err)
			_, err = s.Append(ctx, nil, persistencetest.Catalogue()...)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("SQLite format 0\x00"), 0)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		},
	}
	for name, write := range corrupt {
		t.Run("Corrupt"+name, func(t *testing.T) {
			t.Parallel()
			path := dbtest.SQLiteFile(t)
			write(t, path)
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = persistence.Open(ctx, path)
			require.ErrorContains(t, err, fmt.Sprintf("open %s: the file is not a SQLite database (or is corrupt)", path))
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, before, after, "the file is left as it was")
		})
	}
}

// TestBadInputText: strings are stored raw in columns as well as in the
// payload, and PostgreSQL refuses NUL bytes and invalid UTF-8 in text
// while encoding/json would silently turn invalid UTF-8 into U+FFFD, so an
// event would not read back as appended. Append refuses both, on every
// engine, naming the field; text that merely looks like them is stored.
func TestBadInputText(t *testing.T) {
	t.Parallel()
	forEachDialect(t, badInputText)
}

func badInputText(t *testing.T, d dialectCase) {
	ctx := t.Context()
	s, err := persistence.Open(ctx, d.newDSN(t))
	require.NoError(t, err)
	defer s.Close()
	at := persistencetest.T0
	refused := []struct {
		event orchestration.Event
		want  string
	}{
		{orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "a\x00b", Model: "m", At: at}, `invalid event 0 (thread.created): field "title" contains a NUL byte`},
		{orchestration.ProjectCreated{ProjectID: "p\xff", Name: "n", WorkspaceRoot: "/w", At: at}, `invalid event 0 (project.created): field "project_id" is not valid UTF-8`},
		{orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m", Delta: "half a rune \xe2\x82", At: at}, `invalid event 0 (message.delta): field "delta" is not valid UTF-8`},
		{orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: "user\x00", At: at}, `invalid event 0 (message.added): field "role" is "user\x00", want user, assistant, system or tool`},
		{orchestration.SettingChanged{Key: "k", Value: json.RawMessage("\"caf\xe9\""), At: at}, `invalid event 0 (setting.changed): field "value" is not valid UTF-8`},
	}
	for _, c := range refused {
		_, err := s.Append(ctx, nil, c.event)
		require.ErrorIs(t, err, persistence.ErrInvalidEvent, c.want)
		require.EqualError(t, err, c.want)
	}
	ok := orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`1`), At: at}
	for _, c := range []struct {
		opts *persistence.AppendOpts
		want string
	}{
		{&persistence.AppendOpts{CommandID: "c\x00"}, `invalid event 0 (setting.changed): field "command_id" contains a NUL byte`},
		{&persistence.AppendOpts{CorrelationID: "\xff"}, `invalid event 0 (setting.changed): field "correlation_id" is not valid UTF-8`},
		{&persistence.AppendOpts{CausationID: "x\x00"}, `invalid event 0 (setting.changed): field "causation_id" contains a NUL byte`},
		{&persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:\xff": 0}}, `append: the expected stream "thread:\xff" is not valid UTF-8`},
	} {
		_, err := s.Append(ctx, c.opts, ok)
		require.EqualError(t, err, c.want)
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "nothing written")

	// Text that only looks like the refused kinds is stored as it is.
	stored := []orchestration.Event{
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: `a literal \u0000 and \\u0000`, Model: "\uFFFD real replacement character", At: at},
		orchestration.SettingChanged{Key: "k", Value: json.RawMessage(`"a JSON escape \u0000 in a value"`), At: at},
	}
	_, err = s.Append(ctx, nil, stored...)
	require.NoError(t, err)
	i := 0
	for rec, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		require.Equal(t, stored[i], rec.Event)
		i++
	}
	require.Equal(t, 2, i)
}
