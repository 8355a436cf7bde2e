package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionLine(t *testing.T) {
	t.Parallel()
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "5f2c0d9e41b8a7c3d6e0f1a2b3c4d5e6f7a8b9c0"
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"Released", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-01T09:30:00Z", "vcs.modified", "false")},
			"v1.2.3, revision " + rev + " (2026-12-01T09:30:00Z), go1.26.8"},
		{"Modified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201093000-5f2c0d9e41b8+dirty"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-12-01T09:30:00Z", "vcs.modified", "true")},
			"v0.0.0-20261201093000-5f2c0d9e41b8+dirty, revision " + rev + " (2026-12-01T09:30:00Z, modified), go1.26.8"},
		{"RevisionOnly", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs("vcs.revision", rev)},
			"v1.2.3, revision " + rev},
		{"NoVCS", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("-buildmode", "exe", "CGO_ENABLED", "1")},
			"(devel), unknown revision, go1.26.8"},
		{"NoVersion", &debug.BuildInfo{GoVersion: "go1.26.8"}, "unknown version, unknown revision, go1.26.8"},
		{"NoBuildInfo", nil, "unknown version, unknown revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, versionLine(tc.info, tc.info != nil))
		})
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, flag := range []string{"--version", "-v"} {
		r := e.runIn(t.Context(), nil, flag)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "peon-store "+buildVersion()+"\n", r.stdout)
		require.Empty(t, r.stderr)
	}
}

// TestVersionBuilt builds peon-store as an operator would and runs
// `--version`: from a git checkout it names the commit, with
// -buildvcs=false it says "unknown revision". The go command does not
// stamp VCS information in a git worktree (whose .git is a file), so the
// VCS half builds from a fresh repository holding a copy of this tree.
func TestVersionBuilt(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds peon-store twice; skipped with -short")
	}
	for _, tool := range []string{"go", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH: %v", tool, err)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	bin := t.TempDir()

	// build builds ./cmd/peon-store in dir.
	build := func(dir, name string, flags ...string) string {
		t.Helper()
		out := filepath.Join(bin, name)
		args := append([]string{"build", "-o", out}, flags...)
		cmd := exec.Command("go", append(args, "./cmd/peon-store")...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v: %s", args, b)
		return out
	}
	version := func(exe string) string {
		t.Helper()
		b, err := exec.Command(exe, "--version").CombinedOutput()
		require.NoError(t, err, "%s --version: %s", exe, b)
		return string(b)
	}
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=peon test", "-c", "user.email=test@peon.invalid",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, b)
		return strings.TrimSpace(string(b))
	}

	t.Run("NoVCS", func(t *testing.T) {
		got := version(build(root, "peon-store-novcs", "-buildvcs=false"))
		require.Regexp(t, `^peon-store \(devel\), unknown revision, go1\.\d+`, got)
	})

	t.Run("FromCommit", func(t *testing.T) {
		// The tree as it is, committed to a new repository: tracked files
		// and new ones that are not ignored.
		if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
			t.Skipf("the source is not a git checkout: %v", err)
		}
		repo := t.TempDir()
		files := git(root, "ls-files", "--cached", "--others", "--exclude-standard")
		for _, f := range strings.Split(files, "\n") {
			b, err := os.ReadFile(filepath.Join(root, f))
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(repo, f), b, 0o644))
		}
		git(repo, "init", "-q")
		git(repo, "add", "-A")
		git(repo, "commit", "-q", "-m", "peon at test time")
		rev := git(repo, "rev-parse", "HEAD")

		got := version(build(repo, "peon-store-vcs", "-buildvcs=true"))
		require.Regexp(t, `^peon-store v0\.0\.0-\d{14}-`+rev[:12]+`, revision `+rev+` \(\d{4}-\d\d-\d\dT[\d:]+Z\), go1\.\d+`, got)

		require.NoError(t, os.WriteFile(filepath.Join(repo, "scratch.txt"), []byte("uncommitted\n"), 0o644))
		got = version(build(repo, "peon-store-dirty", "-buildvcs=true"))
		require.Regexp(t, `^peon-store v0\.0\.0-\d{14}-`+rev[:12]+`\+dirty, revision `+rev+` \(\d{4}-\d\d-\d\dT[\d:]+Z, modified\), go1\.\d+`, got)
	})
}
