package cli

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// result is what one run printed.
type result struct {
	code           int
	stdout, stderr string
}

// env is a test's command line: its store and environment.
type env struct {
	t        *testing.T
	db       string
	vars     map[string]string
	terminal *bool
	// migrations, when set, replaces the embedded migration directory.
	migrations atlasmigrate.Dir
}

func newEnv(t *testing.T) *env {
	return &env{t: t, db: dbtest.SQLiteFile(t), vars: map[string]string{"HOME": t.TempDir()}}
}

// run runs peon-store with --db set to the env's store.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runIn(e.t.Context(), nil, append([]string{"--db", e.db}, args...)...)
}

// runIn runs peon-store with args as given, stdin and ctx.
func (e *env) runIn(ctx context.Context, stdin []byte, args ...string) result {
	var out, errOut bytes.Buffer
	a := &app{stdin: bytes.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return e.vars[k] }, terminal: e.terminal, width: 100, migrations: e.migrations}
	code := a.run(ctx, args)
	return result{code, out.String(), errOut.String()}
}

// ok requires a successful run and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	require.Equal(e.t, 0, r.code, "peon-store %v: %s", args, r.stderr)
	return r.stdout
}

// golden compares got, with the store's path replaced by $DB, with
// testdata/NAME.golden; -update rewrites the file.
func (e *env) golden(name, got string) {
	e.t.Helper()
	got = strings.ReplaceAll(got, e.db, "$DB")
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(e.t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(e.t, err, "run go test ./internal/cli -update to create it")
	require.Equal(e.t, string(want), got, "differs from %s (go test ./internal/cli -update rewrites it)", path)
}

// demoEnv is a store holding the demo session of seed 1, written once and
// shared read-only by the subtests of one test.
func demoEnv(t *testing.T) (*env, string) {
	e := newEnv(t)
	out := e.ok("demo", "--seed", "1")
	return e, out
}

func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), sc.Text())
		vs = append(vs, v)
	}
	return vs
}

func TestDemoAndViews(t *testing.T) {
	t.Parallel()
	e, demo := demoEnv(t)
	e.golden("demo", demo)
	threads := jsonLines[projection.Thread](t, e.ok("threads", "--all", "--json"))
	require.Len(t, threads, 4)
	showcase := threads[0].ID

	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		e.golden("events_head", e.ok("events", "--limit", "40"))
		e.golden("events_settings", e.ok("events", "--stream", "settings"))
		out := e.ok("events", "--from", "100", "--limit", "3")
		require.Contains(t, out, "\n    100  ")
		require.Contains(t, out, "\n    102  ")
		require.NotContains(t, out, "\n    103  ")
	})

	t.Run("EventsJSON", func(t *testing.T) {
		t.Parallel()
		type line struct {
			Sequence int64           `json:"sequence"`
			Stream   string          `json:"stream"`
			Type     string          `json:"type"`
			Data     json.RawMessage `json:"data"`
		}
		failed := jsonLines[line](t, e.ok("events", "--type", "turn.failed,turn.interrupted", "--json"))
		require.Len(t, failed, 2)
		require.Equal(t, orchestration.TypeTurnFailed, failed[0].Type)
		require.Equal(t, orchestration.TypeTurnInterrupted, failed[1].Type)
		require.Equal(t, "thread:"+showcase, failed[0].Stream)
		ev, err := orchestration.Decode(failed[0].Type, failed[0].Data)
		require.NoError(t, err)
		require.Contains(t, ev.(orchestration.TurnFailed).Error, "overloaded")

		stream := jsonLines[line](t, e.ok("events", "--stream", "thread:"+showcase, "--json"))
		require.Greater(t, len(stream), 50)
		for i, l := range stream {
			require.Equal(t, "thread:"+showcase, l.Stream)
			if i > 0 {
				require.Greater(t, l.Sequence, stream[i-1].Sequence)
			}
		}
	})

	t.Run("EventsOnTerminalFitTheWidth", func(t *testing.T) {
		t.Parallel()
		term := &env{t: t, db: e.db, vars: e.vars, terminal: new(true)}
		out := term.ok("events", "--limit", "20")
		for line := range strings.Lines(out) {
			require.LessOrEqual(t, len([]rune(strings.TrimSuffix(line, "\n"))), 100, line)
		}
		require.Contains(t, out, "…")
	})

	t.Run("Projects", func(t *testing.T) {
		t.Parallel()
		e.golden("projects", e.ok("projects"))
		projects := jsonLines[projection.Project](t, e.ok("projects", "--json"))
		require.Len(t, projects, 3)
		require.Equal(t, "billing-service", projects[1].Name)
	})

	t.Run("Threads", func(t *testing.T) {
		t.Parallel()
		e.golden("threads", e.ok("threads"))
		e.golden("threads_all", e.ok("threads", "--all"))
		require.Len(t, jsonLines[projection.Thread](t, e.ok("threads", "--json")), 3, "the archived thread is left out")
		mine := jsonLines[projection.Thread](t, e.ok("threads", "--all", "--json", "--project", threads[0].ProjectID))
		require.Len(t, mine, 2)
		for _, th := range mine {
			require.Equal(t, threads[0].ProjectID, th.ProjectID)
		}
	})

	t.Run("Thread", func(t *testing.T) {
		t.Parallel()
		e.golden("thread", e.ok("thread", showcase))
		d := jsonLines[projection.ThreadDetail](t, e.ok("thread", showcase, "--json"))
		require.Len(t, d, 1)
		var statuses []string
		for _, tu := range d[0].Turns {
			statuses = append(statuses, tu.Status)
		}
		require.Equal(t, []string{"failed", "completed", "completed", "reverted", "interrupted"}, statuses)
		require.Len(t, d[0].Checkpoints, 3)
		require.NotNil(t, d[0].Checkpoints[2].RevertedAt)
	})

	t.Run("VerifyAndRebuild", func(t *testing.T) {
		t.Parallel()
		out := e.ok("verify")
		require.True(t, strings.HasPrefix(out, "OK: 393 events in 8 streams"), out)
		r := e.run("rebuild")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "Rebuilt the projections from 393 events")
		require.Contains(t, r.stderr, "Rebuilding projections: 393/393 events (100%)\n")
		term := &env{t: t, db: e.db, vars: e.vars, terminal: new(true)}
		r = term.run("rebuild")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stderr, "\rRebuilding projections  [##############################] 100%  393/393 events\n")
	})
}

func TestDemo(t *testing.T) {
	t.Parallel()

	t.Run("SameSeedSameSession", func(t *testing.T) {
		t.Parallel()
		a, b := newEnv(t), newEnv(t)
		a.db, b.db = ":memory:", ":memory:"
		outA := a.ok("demo", "--seed", "42", "--threads", "2", "--turns", "3")
		require.Equal(t, outA, b.ok("demo", "--seed", "42", "--threads", "2", "--turns", "3"))
		require.NotEqual(t, outA, b.ok("demo", "--seed", "43", "--threads", "2", "--turns", "3"))
	})

	t.Run("RunsAgainWithAFreshSeed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("demo", "--threads", "1", "--turns", "1")
		out := e.ok("demo", "--threads", "1", "--turns", "1")
		require.NotContains(t, out, "(seed 1)")
		r := e.run("demo", "--seed", "1")
		require.Equal(t, ExitFailure, r.code)
		require.Equal(t, "peon-store: demo: the store already holds the session of seed 1; pass another --seed, or none\n", r.stderr)
	})

	t.Run("Sized", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		out := e.ok("demo", "--threads", "7", "--turns", "2")
		require.Contains(t, out, "3 projects, 7 threads, 14 turns")
		require.Len(t, jsonLines[projection.Thread](t, e.ok("threads", "--all", "--json")), 7)
		require.True(t, strings.HasPrefix(e.ok("verify"), "OK: "))
	})

	t.Run("DefaultStoreInTheDataDirectory", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		xdg := t.TempDir()
		e.vars["XDG_DATA_HOME"] = xdg
		r := e.runIn(t.Context(), nil, "demo", "--threads", "1", "--turns", "1")
		require.Equal(t, 0, r.code, r.stderr)
		info, err := os.Stat(filepath.Join(xdg, "peon"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
		info, err = os.Stat(filepath.Join(xdg, "peon", "peon.db"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

		// $PEON_DB wins over the data directory, --db over both.
		e.vars[EnvDB] = filepath.Join(t.TempDir(), "env.db")
		r = e.runIn(t.Context(), nil, "threads")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "no store at "+e.vars[EnvDB])
		r = e.runIn(t.Context(), nil, "--db", filepath.Join(xdg, "peon", "peon.db"), "threads")
		require.Equal(t, 0, r.code, r.stderr)
	})
}

func TestDataDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"XDG", map[string]string{"XDG_DATA_HOME": "/x/data", "HOME": "/home/a"}, "/x/data/peon"},
		{"RelativeXDGIsIgnored", map[string]string{"XDG_DATA_HOME": "data", "HOME": "/home/a"}, "/home/a/.local/share/peon"},
		{"Home", map[string]string{"HOME": "/home/a"}, "/home/a/.local/share/peon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := dataDir(func(k string) string { return tc.vars[k] })
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestExportImport(t *testing.T) {
	t.Parallel()

	t.Run("RoundTripIsByteIdentical", func(t *testing.T) {
		t.Parallel()
		src, _ := demoEnv(t)
		first := filepath.Join(t.TempDir(), "first.jsonl")
		r := src.run("export", "-o", first)
		require.Equal(t, 0, r.code, r.stderr)
		require.Empty(t, r.stdout)
		require.Contains(t, r.stderr, "Exported 393 events to "+first)
		info, err := os.Stat(first)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		firstBytes, err := os.ReadFile(first)
		require.NoError(t, err)
		require.Equal(t, string(firstBytes), src.ok("export"), "stdout and -o write the same bytes")

		dst := newEnv(t)
		out := dst.ok("import", first)
		require.Contains(t, out, "Imported 393 events (sequences 1 to 393) into "+dst.db)
		require.Contains(t, out, "the projections caught up on 393 events")
		require.True(t, strings.HasPrefix(dst.ok("verify"), "OK: 393 events"))
		require.Equal(t, string(firstBytes), dst.ok("export"))
		require.Equal(t, src.ok("thread", jsonLines[projection.Thread](t, src.ok("threads", "--json"))[0].ID),
			dst.ok("thread", jsonLines[projection.Thread](t, dst.ok("threads", "--json"))[0].ID))

		// From standard input too.
		stdin := newEnv(t)
		r = stdin.runIn(t.Context(), firstBytes, "--db", stdin.db, "import")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, string(firstBytes), stdin.ok("export"))
	})

	t.Run("MalformedLineWritesNothing", func(t *testing.T) {
		t.Parallel()
		src, _ := demoEnv(t)
		lines := strings.SplitAfter(src.ok("export"), "\n")
		lines[99] = strings.Replace(lines[99], `"version":`, `"version":"x`, 1)
		dst := newEnv(t)
		r := dst.runIn(t.Context(), []byte(strings.Join(lines, "")), "--db", dst.db, "import")
		require.Equal(t, ExitFailure, r.code)
		require.True(t, strings.HasPrefix(r.stderr, "peon-store: import from standard input: line 100: "), r.stderr)
		require.True(t, strings.HasSuffix(r.stderr, "; nothing was imported\n"), r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"))
		require.Empty(t, dst.ok("export"))
	})

	t.Run("NonEmptyStoreRefusedUnlessForced", func(t *testing.T) {
		t.Parallel()
		src, _ := demoEnv(t)
		file := filepath.Join(t.TempDir(), "e.jsonl")
		src.ok("export", "-o", file)
		r := src.run("import", file)
		require.Equal(t, ExitFailure, r.code)
		require.Equal(t, "peon-store: import: store is not empty: it holds 393 events; import into a new --db, or pass --force to add the events after the store's\n", r.stderr)
		r = src.run("import", "--force", file)
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "line 1: sequence 1 is not after the store's last sequence 393")
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.run("import", filepath.Join(t.TempDir(), "nope.jsonl"))
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "no such file or directory")
	})
}

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestFollow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("migrate")
	writer, err := persistence.Open(t.Context(), e.db) // another store on the file, as another process would
	require.NoError(t, err)
	defer writer.Close()
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	_, err = writer.Append(t.Context(), nil, orchestration.ProjectCreated{ProjectID: "p1", Name: "before", WorkspaceRoot: "/w", At: at})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
		done <- a.run(ctx, []string{"--db", e.db, "events", "--follow", "--type", "project.renamed,project.created", "--json"})
	}()
	waitFor := func(s string) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), s) }, 10*time.Second, 10*time.Millisecond,
			"waiting for %q; stdout %q, stderr %q", s, out.String(), errOut.String())
	}
	waitFor(`"name":"before"`)
	for i := range 3 {
		_, err := writer.Append(t.Context(), nil,
			orchestration.SettingChanged{Key: "skipped", Value: json.RawMessage("1"), At: at},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "after-" + string(rune('a'+i)), At: at})
		require.NoError(t, err)
		waitFor(`"name":"after-` + string(rune('a'+i)) + `"`)
	}
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not stop when its context ended")
	}
	lines := jsonLines[map[string]any](t, out.String())
	require.Len(t, lines, 4, "the settings events are filtered out")
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("migrate", "status")
	require.Equal(t, ExitPending, r.code)
	require.Regexp(t, `(?m)^\d{14}\s+init\s+pending\s+-$`, r.stdout)
	require.Regexp(t, "(1 migration pending; apply it|[0-9]+ migrations pending; apply them) with `peon-store migrate`", r.stderr)
	require.NoFileExists(t, e.db, "status creates nothing")

	require.Regexp(t, `^applied \d{14} init\n(applied \d{14} \w+\n)*Applied \d+ migrations?.\n$`, e.ok("migrate"))
	require.Equal(t, "The schema is up to date; nothing to apply.\n", e.ok("migrate"))
	require.Regexp(t, `(?m)^\d{14}\s+init\s+applied\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`, e.ok("migrate", "status"))
}

func TestErrors(t *testing.T) {
	t.Parallel()

	for name, tc := range map[string]struct {
		args   []string
		code   int
		stderr string
	}{
		"UnknownCommand": {[]string{"frobnicate"}, ExitUsage, `peon-store: unknown command "frobnicate" for "peon-store" (see ` + "`peon-store --help`)\n"},
		"UnknownFlag":    {[]string{"events", "--bogus"}, ExitUsage, "peon-store: unknown flag: --bogus (see `peon-store events --help`)\n"},
		"BadFlagValue":   {[]string{"events", "--limit", "many"}, ExitUsage, "peon-store: invalid --limit \"many\": want a whole number (see `peon-store events --help`)\n"},
		"UnknownType":    {[]string{"events", "--type", "turn.exploded"}, ExitUsage, "peon-store: --type: unknown event type \"turn.exploded\""},
		"ExtraArgument":  {[]string{"threads", "x"}, ExitUsage, "peon-store: threads takes no arguments, got \"x\" (see `peon-store threads --help`)\n"},
		"ThreadNeedsID":  {[]string{"thread"}, ExitUsage, "peon-store: thread takes one thread ID"},
		"NoStore":        {[]string{"threads"}, ExitFailure, "peon-store: no store at $DB: create one with `peon-store demo` or `peon-store migrate`, or pass --db\n"},
		"BadScheme":      {[]string{"--db", "mysql://x", "threads"}, ExitUsage, `peon-store: --db: open "mysql://x": unsupported scheme "mysql"`},
		"BadSize":        {[]string{"demo", "--threads", "0"}, ExitUsage, "peon-store: --threads and --turns must be at least 1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.run(tc.args...)
			require.Equal(t, tc.code, r.code, r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, strings.ReplaceAll(tc.stderr, "$DB", e.db)), "stderr: %q", r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			require.NotContains(t, r.stderr, "goroutine")
		})
	}

	t.Run("ThreadNotFound", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("migrate")
		r := e.run("thread", "thr-nope")
		require.Equal(t, ExitFailure, r.code)
		require.Equal(t, `peon-store: no thread "thr-nope" in `+e.db+"; list them with `peon-store threads --all`\n", r.stderr)
	})

	t.Run("NotADatabase", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		require.NoError(t, os.WriteFile(e.db, bytes.Repeat([]byte("not sqlite "), 1000), 0o600))
		r := e.run("events")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "not a SQLite database")
		require.Equal(t, 1, strings.Count(r.stderr, "\n"))
	})

	t.Run("UndecodableEvent", func(t *testing.T) {
		t.Parallel()
		e, _ := demoEnv(t)
		db, err := sql.Open("sqlite", e.db)
		require.NoError(t, err)
		_, err = db.Exec("UPDATE events SET payload = '{broken' WHERE sequence = 2")
		require.NoError(t, err)
		require.NoError(t, db.Close())

		out := e.ok("events", "--limit", "3")
		require.Regexp(t, `(?m)^      2  .* setting.changed      \(cannot decode: decode setting.changed: .*\)$`, out)
		lines := jsonLines[map[string]any](t, e.ok("events", "--limit", "3", "--json"))
		require.Contains(t, lines[1]["error"], "decode setting.changed")
		r := e.run("export")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stderr, "decode event 2 (setting.changed)")
		r = e.run("verify")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stdout, "problem")
	})

	t.Run("VerifyListsProblems", func(t *testing.T) {
		t.Parallel()
		e, _ := demoEnv(t)
		db, err := sql.Open("sqlite", e.db)
		require.NoError(t, err)
		_, err = db.Exec("UPDATE projection_threads SET title = 'tampered' WHERE rowid = (SELECT MIN(rowid) FROM projection_threads)")
		require.NoError(t, err)
		_, err = db.Exec("DELETE FROM projection_messages WHERE rowid = (SELECT MIN(rowid) FROM projection_messages)")
		require.NoError(t, err)
		require.NoError(t, db.Close())

		r := e.run("verify")
		require.Equal(t, ExitFailure, r.code)
		require.Contains(t, r.stdout, "2 problems:\n")
		require.Contains(t, r.stdout, "tampered")
		require.Equal(t, "peon-store: verify: the store is not sound (2 problems listed above); `peon-store rebuild` repairs projection problems, log problems need a repair by hand\n", r.stderr)

		e.ok("rebuild")
		require.True(t, strings.HasPrefix(e.ok("verify"), "OK: "))
	})
}

func TestHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{
		{}, {"--help"}, {"migrate", "--help"}, {"migrate", "status", "--help"}, {"demo", "--help"}, {"events", "--help"},
		{"projects", "--help"}, {"threads", "--help"}, {"thread", "--help"}, {"rebuild", "--help"},
		{"verify", "--help"}, {"export", "--help"}, {"import", "--help"}, {"help", "events"},
		{"completion", "--help"}, {"completion", "bash", "--help"},
	} {
		r := e.runIn(t.Context(), nil, args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stdout, "Usage:", "%v", args)
		require.Contains(t, r.stdout, "--db", "%v", args)
	}
	e.golden("help", e.runIn(t.Context(), nil, "--help").stdout)
}
