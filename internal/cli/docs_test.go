package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// transcriptDocs are the documents whose console blocks are transcripts of
// the build, relative to this package.
var transcriptDocs = []string{"../../docs/CLI.md", "../../README.md"}

// TestDocsAreTranscripts runs every ```console block of transcriptDocs, as
// one bash session in a fresh directory per block, with the peon-store
// this tree builds, and requires each command's output (stdout and
// stderr, as a terminal shows them) to be what the block shows.
//
// Conventions of a block:
//   - "$ CMD" is a command; the lines up to the next one are its output,
//     and blank lines after them only separate it from the next command.
//   - An output line that is only "…" stands for lines left out: the lines
//     before it must open the output, those after it close it.
//   - Paths under /tmp/ are under the session's directory; the working
//     directory is an empty one; `go build ./cmd/peon-store` copies in the
//     binary the test built; peon-store is on $PATH.
//   - What must vary from run to run is compared as ~: durations and rates
//     ("in 3ms (79978 events/s)"), elapsed_seconds, event ids, recorded_at
//     and executed_at times.
//
// go test ./internal/cli -run TestDocsAreTranscripts -update (or
// PEON_UPDATE_DOCS=1) rewrites the outputs that differ with what the build
// prints, keeping each "…" with as many lines before and after it.
func TestDocsAreTranscripts(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the transcripts are bash sessions, and there is no bash here")
	}
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the test builds peon-store with go")
	bin := t.TempDir()
	build := exec.Command(goTool, "build", "-o", filepath.Join(bin, "peon-store"), "github.com/peonhq/peon/cmd/peon-store")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build peon-store: %s", out)

	rewrite := *update || os.Getenv("PEON_UPDATE_DOCS") == "1"
	for _, path := range transcriptDocs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			lines := strings.Split(string(src), "\n")
			blocks := consoleBlocks(lines)
			require.NotEmpty(t, blocks, "%s has no console block", path)
			for i := len(blocks) - 1; i >= 0; i-- { // from the end, so that rewrites keep earlier line numbers
				b := blocks[i]
				got := runSession(t, bash, filepath.Join(bin, "peon-store"), b.commands())
				if rewrite {
					lines = slices.Replace(lines, b.start, b.end, b.rewritten(got)...)
					continue
				}
				for j, c := range b.cmds {
					want, have := c.expected(), got[j]
					require.True(t, matches(want, have),
						"%s:%d: `%s` printed other output than the document shows "+
							"(go test ./internal/cli -run TestDocsAreTranscripts -update rewrites it):\n--- document\n%s\n--- build\n%s",
						path, c.line+1, c.cmd, strings.Join(want, "\n"), strings.Join(have, "\n"))
				}
			}
			if rewrite {
				require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644))
			}
		})
	}
}

// block is a console block: lines[start:end] are its commands and outputs.
type block struct {
	start, end int
	cmds       []docCommand
}

// docCommand is one "$ " line of a block and the output lines after it.
type docCommand struct {
	line   int // index of the "$ " line
	cmd    string
	output []string // as written, blank separator lines included
}

// consoleBlocks finds the ```console blocks of a document.
func consoleBlocks(lines []string) []block {
	var blocks []block
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```console" {
			continue
		}
		b := block{start: i + 1}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			if cmd, ok := strings.CutPrefix(lines[i], "$ "); ok {
				b.cmds = append(b.cmds, docCommand{line: i, cmd: cmd})
			} else if len(b.cmds) > 0 {
				c := &b.cmds[len(b.cmds)-1]
				c.output = append(c.output, lines[i])
			}
		}
		b.end = i
		blocks = append(blocks, b)
	}
	return blocks
}

func (b block) commands() []string {
	cmds := make([]string, len(b.cmds))
	for i, c := range b.cmds {
		cmds[i] = c.cmd
	}
	return cmds
}

// expected is the output the document shows, without separator lines.
func (c docCommand) expected() []string {
	return trimBlank(c.output)
}

// rewritten returns the block's lines with each command's output replaced
// by got, keeping the document's elisions and separators.
func (b block) rewritten(got [][]string) []string {
	var out []string
	for i, c := range b.cmds {
		out = append(out, "$ "+c.cmd)
		want, have := c.expected(), got[i]
		if matches(want, have) {
			out = append(out, c.output...) // what varies stays as it is
			continue
		}
		if k := indexOf(want, "…"); k >= 0 {
			tail := len(want) - k - 1
			if len(have) > k+tail {
				have = append(append(append([]string{}, have[:k]...), "…"), have[len(have)-tail:]...)
			}
		}
		out = append(out, have...)
		for range len(c.output) - len(want) {
			out = append(out, "")
		}
	}
	return out
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// volatile is what varies from run to run, and what it is compared as.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`in (\d+(\.\d+)?(h|ms|µs|ns|m|s))+ \((\d+|-) events/s\)`), "in ~ (~ events/s)"},
	{regexp.MustCompile(`"(recorded_at|executed_at|pruned_at)":"[^"]*"`), `"$1":"~"`},
	{regexp.MustCompile(`"event_id":"[0-9a-f-]{36}"`), `"event_id":"~"`},
	{regexp.MustCompile(`"elapsed_seconds":[0-9.e+-]+`), `"elapsed_seconds":~`},
	{regexp.MustCompile(`given back, in \d+ transactions? \([^)]*\)`), "given back, in ~ transactions (~)"},
	// The pages a removal frees vary by a page or two from run to run.
	{regexp.MustCompile(`[0-9.]+ (B|KiB|MiB|GiB) given back`), "~ given back"},
	{regexp.MustCompile(`^Freed [0-9.]+ (B|KiB|MiB|GiB); the database gave back [0-9.]+ (B|KiB|MiB|GiB)\.$`), "Freed ~; the database gave back ~."},
	{regexp.MustCompile(`(\s)applied(\s+)\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`), "${1}applied${2}~"},
}

func normalize(line string) string {
	for _, v := range volatile {
		line = v.re.ReplaceAllString(line, v.repl)
	}
	return line
}

// matches reports whether the output have is what the document's want
// shows, with "…" standing for left-out lines.
func matches(want, have []string) bool {
	eq := func(w, h []string) bool {
		if len(w) != len(h) {
			return false
		}
		for i := range w {
			if normalize(w[i]) != normalize(h[i]) {
				return false
			}
		}
		return true
	}
	k := indexOf(want, "…")
	if k < 0 {
		return eq(want, have)
	}
	head, tail := want[:k], want[k+1:]
	return len(have) >= len(head)+len(tail) && eq(head, have[:len(head)]) && eq(tail, have[len(have)-len(tail):])
}

// runSession runs cmds in one bash session in a fresh directory and
// returns each one's output lines, with the session's directory shown as
// /tmp.
func runSession(t *testing.T, bash, bin string, cmds []string) [][]string {
	t.Helper()
	root := t.TempDir()
	work, home := filepath.Join(root, "work"), filepath.Join(root, "home")
	require.NoError(t, os.Mkdir(work, 0o700))
	require.NoError(t, os.Mkdir(home, 0o700))
	const mark = "\x1edoc-command\x1e"
	var script strings.Builder
	script.WriteString(`go() { if [ "$*" = "build ./cmd/peon-store" ]; then cp "$PEON_STORE_BIN" ./peon-store; else command go "$@"; fi; }` + "\n")
	for _, c := range cmds {
		fmt.Fprintf(&script, "printf '%s\\n'\n{\n%s\n} 2>&1\n", mark, strings.ReplaceAll(c, "/tmp/", root+"/"))
	}
	cmd := exec.CommandContext(t.Context(), bash, "--noprofile", "--norc", "-c", script.String())
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, "TZ=UTC", "LC_ALL=C", "PEON_STORE_BIN=" + bin,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The session's exit status is its last command's; a block shows a
	// status it cares about with echo.
	var exit *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &exit) {
		require.NoError(t, err, "run the session: %s", out.String())
	}
	text := strings.ReplaceAll(out.String(), root+"/", "/tmp/")
	parts := strings.Split(text, mark+"\n")
	require.Len(t, parts, len(cmds)+1, "a command ended the session early: %s", text)
	require.Empty(t, parts[0])
	got := make([][]string, len(cmds))
	for i, p := range parts[1:] {
		got[i] = trimBlank(strings.Split(p, "\n"))
	}
	return got
}

func TestTranscriptMatching(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		want, have []string
		ok         bool
	}{
		"Same":             {[]string{"a", "b"}, []string{"a", "b"}, true},
		"OtherLine":        {[]string{"a", "b"}, []string{"a", "c"}, false},
		"MoreLines":        {[]string{"a"}, []string{"a", "b"}, false},
		"ElisionHeadTail":  {[]string{"a", "…", "z"}, []string{"a", "b", "c", "z"}, true},
		"ElisionNothing":   {[]string{"a", "…", "z"}, []string{"a", "z"}, true},
		"ElisionWrongTail": {[]string{"a", "…", "z"}, []string{"a", "b", "y"}, false},
		"ElisionTooShort":  {[]string{"a", "…", "a"}, []string{"a"}, false},
		"Durations": {[]string{"Exported 3 events to x in 3ms (1000 events/s)."},
			[]string{"Exported 3 events to x in 1.204s (2 events/s)."}, true},
		"CountsAreNotVolatile": {[]string{"Exported 3 events to x in 3ms (1000 events/s)."},
			[]string{"Exported 4 events to x in 3ms (1000 events/s)."}, false},
		"JSON": {[]string{`{"event_id":"01a22272-6450-7c8b-aa90-9c5111241337","recorded_at":"2026-11-28T13:57:31.8Z","elapsed_seconds":0.5}`},
			[]string{`{"event_id":"01a23379-afc2-77d9-89e3-7cdf79fed056","recorded_at":"2026-12-01T21:19:02.594474Z","elapsed_seconds":1e-05}`}, true},
		"MigrationTime": {[]string{"20261128130707  init         applied  2026-11-28 13:57:31Z"},
			[]string{"20261128130707  init         applied  2026-12-01 21:19:02Z"}, true},
	} {
		require.Equal(t, tc.ok, matches(tc.want, tc.have), name)
	}
}
