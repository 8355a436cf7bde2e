//go:build unix

package persistence_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

func requireMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), "mode of %s is %v, want %v", path, info.Mode().Perm(), want)
}

// TestAtRestFileModes: OpenDir creates its directory 0700 and the database
// 0600, and SQLite gives the -wal and -shm files the database's mode,
// whatever the process's umask (checked in child processes with umask 000
// and 022, while the store is open after a write).
func TestAtRestFileModes(t *testing.T) {
	t.Parallel()
	for _, umask := range []string{"000", "022", "077"} {
		t.Run("Umask"+umask, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			c := startHelper(t, "open", envDSN+"=dir:"+dir, envUmask+"="+umask, envHold+"=1")
			c.waitLine(t, "ok", 30*time.Second)
			defer c.kill(t)
			requireMode(t, dir, 0o700)
			db := filepath.Join(dir, persistence.DBFileName)
			requireMode(t, db, 0o600)
			requireMode(t, db+"-wal", 0o600)
			requireMode(t, db+"-shm", 0o600)
		})
	}
	t.Run("OpenOfAPath", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "store.db")
		s, err := persistence.Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Append(t.Context(), nil, persistencetest.Catalogue()...)
		require.NoError(t, err)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			requireMode(t, p, 0o600)
		}
	})
}

// unprivileged runs helper processes under an account for which file
// modes bind: the test's own when it is not root, otherwise nobody
// (65534), with a copy of the test binary that nobody may execute. own
// hands a path to that account.
type unprivileged struct {
	exe  string
	cred *syscall.Credential
}

func newUnprivileged(t *testing.T) *unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		return &unprivileged{exe: os.Args[0]}
	}
	// Root ignores file modes: run the checks as nobody.
	dir, err := os.MkdirTemp("", "peon-unprivileged-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	exe := filepath.Join(dir, "persistence.test")
	src, err := os.Open(os.Args[0])
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	u := &unprivileged{exe: exe, cred: &syscall.Credential{Uid: 65534, Gid: 65534}}
	// Can we become nobody here (a user namespace may not map it)?
	c := u.command("none")
	if err := c.cmd.Run(); err != nil && !strings.Contains(c.stderr.String(), "unknown helper role") {
		t.Skipf("tests run as root and cannot run a process as nobody (%v); file modes cannot be tested here", err)
	}
	return u
}

func (u *unprivileged) command(role string, env ...string) *child {
	c := helperCommandOf(u.exe, role, env...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	c.cmd.Dir = filepath.Dir(u.exe)
	return c
}

// own gives paths to the unprivileged account (a no-op when not root).
func (u *unprivileged) own(t *testing.T, paths ...string) {
	t.Helper()
	if u.cred == nil {
		return
	}
	for _, p := range paths {
		require.NoError(t, os.Lchown(p, int(u.cred.Uid), int(u.cred.Gid)))
	}
}

// open runs a helper that opens dsn ("dir:" for OpenDir) as the
// unprivileged account and returns what it printed.
func (u *unprivileged) open(t *testing.T, dsn string) string {
	t.Helper()
	c := u.command("open", envDSN+"="+dsn)
	startChild(t, c)
	out := c.wait(t)
	require.Len(t, out, 1, "stderr: %s", c.stderr)
	return out[0]
}

// sharedTempDir makes a directory the unprivileged account can reach.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "peon-perm-")
	require.NoError(t, err)
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			os.Chmod(p, 0o700)
			return nil
		})
		os.RemoveAll(dir)
	})
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// TestBadPermissions: a database file the process may not write, and a
// data directory it may not write, are refused with a clear error and
// nothing is changed. Tests run as root, where modes do not bind, run the
// store in a child process as nobody.
func TestBadPermissions(t *testing.T) {
	t.Parallel()
	u := newUnprivileged(t)
	ctx := t.Context()

	// dbIn creates a migrated database with a few events in dir.
	dbIn := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, persistence.DBFileName)
		s, err := persistence.Open(ctx, path)
		require.NoError(t, err)
		_, err = s.Append(ctx, nil, persistencetest.Catalogue()[:3]...)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		return path
	}

	t.Run("ReadOnlyFile", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(sharedTempDir(t), "data")
		require.NoError(t, os.Mkdir(dir, 0o700))
		path := dbIn(t, dir)
		require.NoError(t, os.Chmod(path, 0o400))
		u.own(t, dir, path)
		before, err := os.ReadFile(path)
		require.NoError(t, err)
		out := u.open(t, path)
		require.Equal(t, fmt.Sprintf("error open %s: the database file is not writable (permission denied); peon needs to write to it", path), out)
		after, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})
	t.Run("ReadOnlyDirectory", func(t *testing.T) {
		// The file may be written but SQLite cannot create its -wal and
		// -shm files beside it.
		t.Parallel()
		dir := filepath.Join(sharedTempDir(t), "data")
		require.NoError(t, os.Mkdir(dir, 0o700))
		path := dbIn(t, dir)
		u.own(t, dir, path)
		require.NoError(t, os.Chmod(dir, 0o500))
		before, err := os.ReadFile(path)
		require.NoError(t, err)
		out := u.open(t, path)
		require.Equal(t, fmt.Sprintf("error open %s: the directory %s is not writable (permission denied); SQLite needs to create the database's -wal and -shm files there", path, dir), out)
		after, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})
	t.Run("UnwritableDataDirectory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(sharedTempDir(t), "data")
		require.NoError(t, os.Mkdir(dir, 0o500))
		u.own(t, dir)
		out := u.open(t, "dir:"+dir)
		path := filepath.Join(dir, persistence.DBFileName)
		require.Equal(t, fmt.Sprintf("error open %s: create database file: open %s: permission denied", path, path), out)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
	t.Run("DataDirectoryInAnUnwritableOne", func(t *testing.T) {
		t.Parallel()
		parent := filepath.Join(sharedTempDir(t), "parent")
		require.NoError(t, os.Mkdir(parent, 0o500))
		u.own(t, parent)
		dir := filepath.Join(parent, "data")
		out := u.open(t, "dir:"+dir)
		require.Equal(t, fmt.Sprintf("error open: create data directory: mkdir %s: permission denied", dir), out)
		require.NoDirExists(t, dir)
	})
}

// hostile are values that would change an SQL statement if they were
// spliced into its text.
var hostile = []string{
	`'; DROP TABLE events; --`,
	`" OR 1=1 --`,
	"x'); DELETE FROM events WHERE ('1'='1",
	"`; DROP TABLE projection_threads; --",
	`$1 ? ?1 :name @p`,
	`\'; SELECT pg_sleep(5); --`,
	"ünï ✓ 𝄞",
	"%s %d %v",
}

// TestHostileValues: stream ids, types, ids, texts, command ids and the
// stream a read asks for are bound as parameters, never spliced into SQL:
// the hostile values above are stored and read back byte for byte, and
// every table is still there.
func TestHostileValues(t *testing.T) {
	t.Parallel()
	forEachDialect(t, hostileValues)
}

func hostileValues(t *testing.T, d dialectCase) {
	ctx := t.Context()
	path := d.newDSN(t)
	s, err := persistence.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	tables := "SELECT COUNT(*) FROM sqlite_master"
	if d.dialect == "postgres" {
		tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	before := queryInt(t, path, tables)
	at := persistencetest.T0
	for i, h := range hostile {
		evs := []orchestration.Event{
			orchestration.ProjectCreated{ProjectID: h, Name: h, WorkspaceRoot: h, At: at},
			orchestration.ThreadCreated{ThreadID: h, ProjectID: h, Title: h, Model: h, At: at},
			orchestration.TurnStarted{ThreadID: h, TurnID: h, At: at},
			orchestration.MessageAdded{ThreadID: h, TurnID: h, MessageID: h, Role: orchestration.RoleUser, Text: h, Streaming: true, At: at},
			orchestration.MessageDelta{ThreadID: h, TurnID: h, MessageID: h, Delta: h, At: at},
			orchestration.CheckpointCreated{ThreadID: h, TurnID: h, GitRef: h, Message: h, At: at},
			orchestration.CheckpointReverted{ThreadID: h, GitRef: h, At: at},
			orchestration.SettingChanged{Key: h, Value: jsonString(h), At: at},
		}
		opts := &persistence.AppendOpts{
			CommandID: h, CorrelationID: h, CausationID: h,
			ExpectedVersions: map[string]int64{orchestration.ProjectStream(h): persistence.NoStream},
		}
		recs, err := s.Append(ctx, opts, evs...)
		require.NoError(t, err, "value %d %q", i, h)
		again, err := s.Append(ctx, opts, evs...)
		require.NoError(t, err)
		require.Equal(t, recs, again, "the hostile command id finds its first append")

		var got []persistence.Recorded
		for rec, err := range s.ReadStream(ctx, orchestration.ThreadStream(h), 1) {
			require.NoError(t, err)
			got = append(got, rec)
		}
		require.Len(t, got, 6, "value %q", h)
		for j, rec := range got {
			require.Equal(t, evs[j+1], rec.Event)
			require.Equal(t, h, rec.CommandID)
			require.Equal(t, h, rec.CorrelationID)
		}
		_, err = s.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{orchestration.ThreadStream(h): 99}}, evs[2])
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		require.ErrorContains(t, err, h)
	}
	for rec, err := range s.ReadStream(ctx, `project:' OR '1'='1`, 0) {
		t.Fatalf("a hostile stream matched %d (%v)", rec.Sequence, err)
	}
	require.Equal(t, before, queryInt(t, path, tables), "no table dropped or added")
	require.Equal(t, 8*len(hostile), queryInt(t, path, "SELECT COUNT(*) FROM events"))
	verifyProjections(t, ctx, s)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
