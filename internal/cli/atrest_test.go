//go:build unix

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// Environment of the at-rest test's child process, which runs peon-store
// under a umask of its own (a umask is the whole process's).
const (
	envAtRestArgs  = "PEON_CLI_ATREST_ARGS" // the peon-store arguments, as a JSON array
	envAtRestUmask = "PEON_CLI_ATREST_UMASK"
)

// TestAtRestHelperProcess is not a test: it is the body of
// TestAtRestCLIFiles's child processes, which run peon-store with the JSON
// array PEON_CLI_ATREST_ARGS under PEON_CLI_ATREST_UMASK and exit with its
// status.
func TestAtRestHelperProcess(t *testing.T) {
	args := os.Getenv(envAtRestArgs)
	if args == "" {
		t.Skip("the body of TestAtRestCLIFiles's child processes; runs only when " + envAtRestArgs + " is set")
	}
	v, err := strconv.ParseUint(os.Getenv(envAtRestUmask), 8, 32)
	if err != nil {
		os.Stderr.WriteString(envAtRestUmask + ": " + err.Error() + "\n")
		os.Exit(2)
	}
	syscall.Umask(int(v))
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		os.Stderr.WriteString(envAtRestArgs + ": " + err.Error() + "\n")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	os.Exit(Run(ctx, argv, os.Stdin, os.Stdout, os.Stderr))
}

// runAtRest runs peon-store in a child process with umask and env, and
// returns its stdout's lines.
func runAtRest(t *testing.T, umask string, env []string, args ...string) []string {
	t.Helper()
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestAtRestHelperProcess$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, envAtRestArgs+"="+string(b), envAtRestUmask+"="+umask)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "peon-store %v failed; stderr: %s", args, stderr.String())
	return strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
}

func requireMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), "mode of %s is %v, want %v", path, info.Mode().Perm(), want)
}

// hostile are values that would change an SQL statement if they were
// spliced into its text (persistence's TestHostileValues stores them).
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

// TestAtRestCLIFiles: the files peon-store creates are the owner's only,
// whatever the umask: its default data directory (0700) and database
// (0600), and an export written with -o (0600).
func TestAtRestCLIFiles(t *testing.T) {
	t.Parallel()
	xdg := t.TempDir()
	env := []string{"XDG_DATA_HOME=" + xdg, "PEON_DB="}
	runAtRest(t, "000", env, "demo")
	dir := filepath.Join(xdg, "peon")
	requireMode(t, dir, 0o700)
	requireMode(t, filepath.Join(dir, persistence.DBFileName), 0o600)

	out := filepath.Join(t.TempDir(), "backup.jsonl")
	runAtRest(t, "000", env, "export", "-o", out)
	requireMode(t, out, 0o600)
	info, err := os.Stat(out)
	require.NoError(t, err)
	require.NotZero(t, info.Size())

	// Hostile filter values reach no SQL text: nothing matches, nothing breaks.
	for _, h := range hostile {
		lines := runAtRest(t, "022", env, "events", "--stream", h)
		for _, l := range lines {
			require.NotContains(t, l, "thread:", "a hostile --stream %q matched events", h)
		}
	}
	runAtRest(t, "022", env, "verify")
}
