package cli

import (
	"crypto/sha256"
	"database/sql"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/migrations"
)

// readOnlyCommands are the commands that must not change a database.
var readOnlyCommands = [][]string{
	{"events"}, {"events", "--json"}, {"projects"}, {"threads"}, {"thread", "thr-x"},
	{"verify"}, {"export"}, {"stats"}, {"migrate", "status"},
}

// fileState is a file's hash and whether its -wal and -shm files exist.
type fileState struct {
	sum      [32]byte
	wal, shm bool
}

func stateOf(t *testing.T, p string) fileState {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	return fileState{sha256.Sum256(b), exists(p + "-wal"), exists(p + "-shm")}
}

// TestReadOnlyCommandsChangeNothing runs every read-only command on
// another application's SQLite file (in rollback and in WAL mode, with an
// events table of its own) and on a store that lacks a migration of the
// build: each is refused with a message that says what the file is, and
// leaves it byte for byte as it was, without a -wal or -shm file.
func TestReadOnlyCommandsChangeNothing(t *testing.T) {
	t.Parallel()
	foreign := func(t *testing.T, wal bool) string {
		p := filepath.Join(t.TempDir(), "other.db")
		db, err := sql.Open("sqlite", p)
		require.NoError(t, err)
		defer db.Close()
		stmts := []string{"CREATE TABLE events (id integer primary key, what text)", "INSERT INTO events VALUES (1, 'launch')", "CREATE TABLE users (id integer)"}
		if wal {
			stmts = append([]string{"PRAGMA journal_mode=WAL"}, stmts...)
		}
		for _, s := range stmts {
			_, err := db.Exec(s)
			require.NoError(t, err)
		}
		require.NoError(t, db.Close())
		return p
	}
	for _, wal := range []bool{false, true} {
		name := "ForeignRollback"
		if wal {
			name = "ForeignWAL"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.db = foreign(t, wal)
			before := stateOf(t, e.db)
			for _, args := range append(readOnlyCommands, []string{"migrate"}, []string{"import"}) {
				r := e.run(args...)
				require.Equal(t, ExitFailure, r.code, "%v: %s", args, r.stdout)
				require.Contains(t, r.stderr, e.db+" is not a peon store: it holds the tables events, users and no peon migrations; peon-store changed nothing", "%v", args)
				require.Equal(t, before, stateOf(t, e.db), "%v changed the file", args)
			}
		})
	}

	t.Run("OlderStore", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("demo", "--threads", "1", "--turns", "1")
		before := stateOf(t, e.db)
		require.False(t, before.wal || before.shm)
		e.migrations = newerMigrations(t)
		for _, args := range readOnlyCommands[:len(readOnlyCommands)-1] { // migrate status reads the embedded directory
			r := e.run(args...)
			require.Equal(t, ExitFailure, r.code, "%v: %s", args, r.stdout)
			require.Contains(t, r.stderr, "migrations pending: the store lacks 1 migration of this build (from 29990101000000 extra); migrate it first (persistence.Migrate, or `peon-store migrate`) (read-only commands change nothing)", "%v", args)
			require.Equal(t, before, stateOf(t, e.db), "%v changed the file", args)
		}
		e.ok("demo", "--threads", "1", "--turns", "1") // a writing command migrates it
		e.ok("verify")
	})

	// An up-to-date store: the read-only commands work and leave no -wal
	// or -shm file behind either.
	t.Run("Store", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("demo", "--threads", "1", "--turns", "1")
		before := stateOf(t, e.db)
		for _, args := range readOnlyCommands {
			if args[0] == "thread" {
				continue // no such thread
			}
			e.ok(args...)
			require.Equal(t, before, stateOf(t, e.db), "%v changed the file", args)
		}
	})
}

// newerMigrations is the embedded SQLite directory with one more
// migration, as a newer build would have.
func newerMigrations(t *testing.T) atlasmigrate.Dir {
	t.Helper()
	dir := &atlasmigrate.MemDir{}
	files, err := fs.Glob(migrations.FS, "sqlite/*.sql")
	require.NoError(t, err)
	for _, f := range files {
		b, err := fs.ReadFile(migrations.FS, f)
		require.NoError(t, err)
		require.NoError(t, dir.WriteFile(path.Base(f), b))
	}
	require.NoError(t, dir.WriteFile("29990101000000_extra.sql", []byte("CREATE TABLE extra_thing (x integer);\n")))
	sum, err := dir.Checksum()
	require.NoError(t, err)
	require.NoError(t, atlasmigrate.WriteSumFile(dir, sum))
	return dir
}
