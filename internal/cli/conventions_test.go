package cli

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/orchestration"
)

func TestCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for shell, marker := range map[string]string{
		"bash": "# bash completion V2 for peon-store",
		"zsh":  "#compdef peon-store",
		"fish": "complete -c peon-store",
	} {
		r := e.runIn(t.Context(), nil, "completion", shell)
		require.Equal(t, 0, r.code, "%s: %s", shell, r.stderr)
		require.Contains(t, r.stdout, marker, shell)
	}
	// The scripts ask peon-store itself; --type completes the catalogue.
	r := e.runIn(t.Context(), nil, "__complete", "events", "--type", "turn.")
	require.Equal(t, 0, r.code, r.stderr)
	for _, typ := range []string{orchestration.TypeTurnStarted, orchestration.TypeTurnFailed} {
		require.Contains(t, r.stdout, typ+"\n")
	}
	require.NotContains(t, r.stdout, orchestration.TypeProjectCreated)
}

// reportKeys decodes one JSON report and returns every key in it, nested
// ones as parent.key, after checking each is snake_case.
func reportKeys(t *testing.T, out string) []string {
	t.Helper()
	require.Equal(t, 1, strings.Count(out, "\n"), "one JSON object on one line: %q", out)
	var v any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				require.Regexp(t, `^[a-z]+(_[a-z0-9]+)*$`, k, "snake_case")
				keys = append(keys, prefix+k)
				walk(prefix+k+".", x)
			}
		case []any:
			for _, x := range v {
				walk(prefix, x)
			}
		}
	}
	walk("", v)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// requireDocumented checks that docs/CLI.md names each key of a report.
func requireDocumented(t *testing.T, keys []string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLI.md"))
	require.NoError(t, err)
	for _, k := range keys {
		k = k[strings.LastIndex(k, ".")+1:]
		require.True(t, strings.Contains(string(doc), "`"+k+"`"), "docs/CLI.md does not document the --json field %s", k)
	}
}

func TestJSONReports(t *testing.T) {
	t.Parallel()

	t.Run("Migrate", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		status := e.run("migrate", "status", "--json")
		require.Equal(t, ExitPending, status.code, status.stderr)
		keys := reportKeys(t, status.stdout)
		require.Equal(t, []string{"migrations", "migrations.applied", "migrations.description", "migrations.executed_at", "migrations.version", "pending"}, keys)
		requireDocumented(t, keys)
		var st statusJSON
		require.NoError(t, json.Unmarshal([]byte(status.stdout), &st))
		require.Positive(t, st.Pending)
		require.Equal(t, len(st.Migrations), st.Pending)
		require.False(t, st.Migrations[0].Applied)
		require.Nil(t, st.Migrations[0].ExecutedAt)

		dry := e.ok("migrate", "--dry-run", "--json")
		keys = reportKeys(t, dry)
		require.Equal(t, []string{"dry_run", "migrations", "migrations.applied", "migrations.description", "migrations.executed_at", "migrations.sql", "migrations.version"}, keys)
		requireDocumented(t, keys)
		require.NoFileExists(t, e.db)

		var m migrateJSON
		require.NoError(t, json.Unmarshal([]byte(e.ok("migrate", "--json")), &m))
		require.False(t, m.DryRun)
		require.NotEmpty(t, m.Migrations)
		require.True(t, m.Migrations[0].Applied)
		require.NotNil(t, m.Migrations[0].ExecutedAt)
		require.Empty(t, m.Migrations[0].SQL)
		require.Equal(t, "{\"dry_run\":false,\"migrations\":[]}\n", e.ok("migrate", "--json"))

		require.NoError(t, json.Unmarshal([]byte(e.ok("migrate", "status", "--json")), &st))
		require.Equal(t, 0, st.Pending)
		require.True(t, st.Migrations[0].Applied)
	})

	t.Run("VerifyRebuildImportExportDemo", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		demo := e.ok("demo", "--seed", "1", "--threads", "2", "--turns", "2", "--json")
		keys := reportKeys(t, demo)
		require.Equal(t, []string{"appends", "deltas", "events", "projects", "seed", "store", "thread_ids", "threads", "turns"}, keys)
		requireDocumented(t, keys)
		var d demoJSON
		require.NoError(t, json.Unmarshal([]byte(demo), &d))
		require.Equal(t, uint64(1), d.Seed)
		require.Len(t, d.ThreadIDs, 2)

		verify := e.ok("verify", "--json")
		keys = reportKeys(t, verify)
		require.Equal(t, []string{"events", "ok", "problems", "pruned", "streams"}, keys)
		requireDocumented(t, keys)
		require.Equal(t, `{"ok":true,"events":`+itoa(d.Events)+`,"pruned":0,"streams":5,"problems":[]}`+"\n", verify)

		rebuild := e.run("rebuild", "--json")
		require.Equal(t, 0, rebuild.code, rebuild.stderr)
		keys = reportKeys(t, rebuild.stdout)
		require.Equal(t, []string{"elapsed_seconds", "events", "first_missing", "first_undecodable", "missing", "undecodable"}, keys)
		requireDocumented(t, keys)
		require.Regexp(t, `^\{"events":`+itoa(d.Events)+`,"undecodable":0,"first_undecodable":null,"missing":0,"first_missing":0,"elapsed_seconds":[0-9.e-]+\}\n$`, rebuild.stdout)

		file := filepath.Join(t.TempDir(), "e.jsonl")
		export := e.run("export", "-o", file, "--json")
		require.Equal(t, 0, export.code, export.stderr)
		keys = reportKeys(t, export.stdout)
		require.Equal(t, []string{"elapsed_seconds", "events", "file"}, keys)
		requireDocumented(t, keys)
		r := e.run("export", "--json")
		require.Equal(t, ExitUsage, r.code)
		require.Contains(t, r.stderr, "--json reports on an export to a file (-o)")

		dst := newEnv(t)
		imp := dst.ok("import", file, "--json")
		keys = reportKeys(t, imp)
		require.Equal(t, []string{"elapsed_seconds", "events", "first_sequence", "last_sequence", "projected"}, keys)
		requireDocumented(t, keys)
		require.Regexp(t, `^\{"events":`+itoa(d.Events)+`,"first_sequence":1,"last_sequence":`+itoa(d.Events)+`,"projected":`+itoa(d.Events)+`,"elapsed_seconds":[0-9.e-]+\}\n$`, imp)
	})

	t.Run("VerifyProblems", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("demo", "--seed", "1", "--threads", "1", "--turns", "1")
		execSQL(t, e.db, "UPDATE projection_threads SET title = 'tampered'")
		r := e.run("verify", "--json")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "the store is not sound")
		keys := reportKeys(t, r.stdout)
		require.Equal(t, []string{"events", "ok", "problems", "problems.column", "problems.detail", "problems.expected",
			"problems.key", "problems.kind", "problems.stored", "problems.table", "problems.text", "pruned", "streams"}, keys)
		requireDocumented(t, keys)
		var v verifyJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		require.False(t, v.OK)
		require.Len(t, v.Problems, 1)
		require.Equal(t, problemJSON{Kind: "projection", Table: "projection_threads", Key: v.Problems[0].Key, Column: "title",
			Stored: "tampered", Expected: v.Problems[0].Expected, Text: v.Problems[0].Text}, v.Problems[0])
		require.Contains(t, v.Problems[0].Text, "stored tampered, expected")
	})
}

func itoa[T ~int | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// execSQL runs statements on the SQLite file at db behind the store's back.
func execSQL(t *testing.T, db string, stmts ...string) {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	require.NoError(t, err)
	defer conn.Close()
	for _, q := range stmts {
		_, err := conn.Exec(q)
		require.NoError(t, err, q)
	}
}

func TestMigrateStatusExitsNonZeroWhilePending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("migrate", "status")
	require.Equal(t, ExitPending, r.code)
	require.Regexp(t, `(?m)^\d{14}\s+init\s+pending\s+-$`, r.stdout)
	require.Regexp(t, "^peon-store: (1 migration pending; apply it|[0-9]+ migrations pending; apply them) with `peon-store migrate`\n$", r.stderr)
	e.ok("migrate")
	r = e.run("migrate", "status")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stderr)
}

func TestMigrateDryRun(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(migrations.FS, "sqlite/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	var want strings.Builder
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS, n)
		require.NoError(t, err)
		want.WriteString("-- " + filepath.Base(n) + " (not applied: --dry-run)\n")
		want.Write(b)
		if !strings.HasSuffix(string(b), "\n") {
			want.WriteString("\n")
		}
	}
	if len(names) == 1 {
		want.WriteString("-- 1 migration would be applied; nothing was changed.\n")
	} else {
		fmt.Fprintf(&want, "-- %d migrations would be applied; nothing was changed.\n", len(names))
	}

	t.Run("MissingStoreIsNotCreated", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		require.Equal(t, want.String(), e.ok("migrate", "--dry-run"))
		require.NoFileExists(t, e.db)
	})

	t.Run("ExistingFileIsByteIdentical", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		require.NoError(t, os.WriteFile(e.db, nil, 0o600)) // an empty database file
		before, err := os.ReadFile(e.db)
		require.NoError(t, err)
		require.Equal(t, want.String(), e.ok("migrate", "--dry-run"))
		after, err := os.ReadFile(e.db)
		require.NoError(t, err)
		require.Equal(t, before, after, "a dry run changes nothing")
		require.Equal(t, ExitPending, e.run("migrate", "status").code)

		e.ok("migrate")
		require.Equal(t, "The schema is up to date; nothing to apply.\n", e.ok("migrate", "--dry-run"))
	})

	t.Run("ForeignFileIsRefused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		execSQL(t, e.db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)", "INSERT INTO notes (text) VALUES ('keep me')")
		before, err := os.ReadFile(e.db)
		require.NoError(t, err)
		r := e.run("migrate", "--dry-run")
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "not a peon store: it holds the tables notes")
		after, err := os.ReadFile(e.db)
		require.NoError(t, err)
		require.Equal(t, before, after, "a refused dry run changes nothing")
	})
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"Int":          {[]string{"events", "--limit", "ten"}, `invalid --limit "ten": want a whole number (see ` + "`peon-store events --help`)"},
		"Int64":        {[]string{"events", "--from", "1e3"}, `invalid --from "1e3": want a whole number (see ` + "`peon-store events --help`)"},
		"IntRange":     {[]string{"demo", "--threads", "99999999999999999999"}, `invalid --threads "99999999999999999999": want a whole number, at most 9223372036854775807 (see ` + "`peon-store demo --help`)"},
		"Uint":         {[]string{"demo", "--seed", "-1"}, `invalid --seed "-1": want a whole number of 0 or more (see ` + "`peon-store demo --help`)"},
		"Bool":         {[]string{"verify", "--json=maybe"}, `invalid --json "maybe": want true or false (see ` + "`peon-store verify --help`)"},
		"NeedsValue":   {[]string{"events", "--limit"}, "--limit needs a value: a whole number (see `peon-store events --help`)"},
		"ShortNeedsIt": {[]string{"export", "-o"}, "--output needs a value: a FILE (see `peon-store export --help`)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.run(tc.args...)
			require.Equal(t, ExitUsage, r.code, r.stderr)
			require.Equal(t, "peon-store: "+tc.want+"\n", r.stderr)
			require.NotContains(t, r.stderr, "strconv")
		})
	}
}

func TestExportOutputRefusedBeforeAnyWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for name, tc := range map[string]struct{ out, want string }{
		"Directory":       {dir, "--output " + dir + ": is a directory; name a file in it, such as " + filepath.Join(dir, "backup.jsonl")},
		"MissingParent":   {filepath.Join(dir, "nope", "x.jsonl"), "--output " + filepath.Join(dir, "nope", "x.jsonl") + ": directory " + filepath.Join(dir, "nope") + " does not exist"},
		"ParentIsAFile":   {filepath.Join(file, "x.jsonl"), "--output " + filepath.Join(file, "x.jsonl") + ": " + file + " is not a directory"},
		"NotARegularFile": {os.DevNull, "--output " + os.DevNull + ": is not a regular file; export writes a file beside it and renames it into place"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The store does not exist: an export that opened it first
			// would say so instead.
			e := newEnv(t)
			r := e.run("export", "-o", tc.out)
			require.Equal(t, ExitUsage, r.code, r.stderr)
			require.Equal(t, "peon-store: "+tc.want+" (see `peon-store export --help`)\n", r.stderr)
			require.NoFileExists(t, e.db)
		})
	}

	t.Run("Unwritable", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			t.Skip("root writes into a read-only directory")
		}
		ro := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		e := newEnv(t)
		r := e.run("export", "-o", filepath.Join(ro, "x.jsonl"))
		require.Equal(t, ExitUsage, r.code, r.stderr)
		require.Contains(t, r.stderr, "cannot write in "+ro)
		require.NoFileExists(t, e.db)
	})

	t.Run("NoTemporaryFileLeftWhenTheStoreFails", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		e := newEnv(t)
		r := e.run("export", "-o", filepath.Join(out, "backup.jsonl"))
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "no store at")
		entries, err := os.ReadDir(out)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
}

func TestRebuildWarnsAboutWhatItSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("demo", "--seed", "1", "--threads", "2", "--turns", "2")
	clean := e.run("rebuild")
	require.Equal(t, 0, clean.code, clean.stderr)
	require.Regexp(t, `^Rebuilt the projections from \d+ events in \S+ \(\d+ events/s\)\.\n$`, clean.stdout)
	require.NotContains(t, clean.stderr, "warning")
	events := regexp.MustCompile(`from (\d+) events`).FindStringSubmatch(clean.stdout)[1]

	execSQL(t, e.db,
		"UPDATE events SET event_type = 'thread.exploded' WHERE sequence = 12",
		"UPDATE events SET payload = '{broken' WHERE sequence = 20",
		"DELETE FROM events WHERE sequence IN (30, 31, 40)")
	r := e.run("rebuild")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^Rebuilt the projections from \d+ of \d+ stored events in \S+ \(\d+ events/s\); 2 rows were left out and 3 sequences are missing\.\n$`, r.stdout)
	require.NotContains(t, r.stdout, "from "+events+" events")
	require.Contains(t, r.stderr, "peon-store: warning: 2 stored rows cannot be decoded and were left out of the projections, the first at sequence 12 (thread.exploded: unknown event type \"thread.exploded\"); `peon-store verify` lists them\n")
	require.Contains(t, r.stderr, "peon-store: warning: 3 sequences are missing from the log, the first 30; `peon-store verify` reports the gaps\n")

	var res rebuildJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("rebuild", "--json")), &res))
	require.Equal(t, int64(2), res.Undecodable)
	require.Equal(t, &decodeErrorJSON{Sequence: 12, Type: "thread.exploded", Error: `unknown event type "thread.exploded"`}, res.FirstUndecodable)
	require.Equal(t, int64(3), res.Missing)
	require.Equal(t, int64(30), res.FirstMissing)
}
