//go:build linux

package persistence_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// smallDisk mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends; it skips the test where mounting is not allowed
// (only root may).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v); TestImportDiskFullPageLimit covers SQLITE_FULL everywhere", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestImportDiskFull: an import that fills the disk of the database (a
// 768 KiB tmpfs) says so and that nothing was imported, writes nothing,
// and the store goes on working.
func TestImportDiskFull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := smallDisk(t, 768<<10)
	src, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	_, err = src.Append(ctx, nil, append([]orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: persistencetest.T0},
		orchestration.ThreadCreated{ThreadID: "big", ProjectID: "p", Title: "t", Model: "m", At: persistencetest.T0},
	}, persistencetest.Deltas("big", 8000)...)...)
	require.NoError(t, err)
	var input bytes.Buffer
	_, err = src.Export(ctx, &input, nil)
	require.NoError(t, err)

	path := filepath.Join(dir, "peon.db")
	s, err := persistence.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Import(ctx, bytes.NewReader(input.Bytes()), nil)
	require.Error(t, err)
	t.Log(err)
	require.Regexp(t, `^import: .*: disk full: nothing was imported; free space`, err.Error())
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)

	_, err = s.Append(ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`1`), At: persistencetest.T0})
	require.NoError(t, err, "the store works after the failed import")
	rep, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "verify: %v", rep.Problems)
	require.NoError(t, s.Close())
	_, err = os.Stat(path)
	require.NoError(t, err)
}
