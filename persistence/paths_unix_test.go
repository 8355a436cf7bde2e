//go:build unix

package persistence_test

import (
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// TestNotARegularFile: a named pipe, a character device, a socket or a
// directory given as the database is refused with an error naming what it
// is, before SQLite touches it (SQLite said "disk I/O error (10)" for a
// FIFO), by Open, a read-only Open and Migrations.
func TestNotARegularFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	sock := filepath.Join(dir, "sock.db")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	cases := map[string]struct{ path, want string }{
		"NamedPipe":  {fifo, "is a named pipe (FIFO), not a database file; give the path of a SQLite file"},
		"CharDevice": {"/dev/null", "is a character device, not a database file; give the path of a SQLite file"},
		"Socket":     {sock, "is a socket, not a database file; give the path of a SQLite file"},
		"Directory":  {dir, "is a directory, not a database file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			errs := make(chan error, 3)
			go func() {
				for _, opts := range []*persistence.Options{nil, {ReadOnly: true}} {
					_, err := persistence.OpenWith(t.Context(), c.path, opts)
					errs <- err
				}
				_, err := persistence.Migrations(t.Context(), c.path)
				errs <- err
			}()
			for range 3 {
				select {
				case err := <-errs:
					require.ErrorContains(t, err, fmt.Sprintf("open %s: %s", c.path, c.want))
				case <-time.After(10 * time.Second):
					t.Fatal("opening blocked on the file")
				}
			}
		})
	}
}
