package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("demo", "--agents", "2", "--hours", "1", "--seed", "3")
	// The workload is dated November 2026: all of it over a day ago.
	var st statsJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("stats", "--prune-deleted-after", "24h", "--prune-archived-after", "24h", "--json")), &st))
	require.Positive(t, st.Prunable.Streams)

	dry := e.ok("prune", "--deleted-older-than", "24h", "--archived-older-than", "24h", "--dry-run", "--json")
	keys := reportKeys(t, dry)
	require.Equal(t, []string{"archive", "archived", "archived_before", "bytes", "bytes_freed", "bytes_reclaimed", "deleted_before", "dry_run",
		"elapsed_seconds", "events", "projection_rows", "streams", "tombstones", "tombstones.bytes", "tombstones.events",
		"tombstones.last_sequence", "tombstones.last_version", "tombstones.pruned_at", "tombstones.stream"}, keys)
	requireDocumented(t, keys)
	var plan pruneJSON
	require.NoError(t, json.Unmarshal([]byte(dry), &plan))
	require.True(t, plan.DryRun)
	require.Equal(t, []int64{st.Prunable.Streams, st.Prunable.Events, st.Prunable.Bytes}, []int64{plan.Streams, plan.Events, plan.Bytes})
	text := e.ok("prune", "--deleted-older-than", "24h", "--archived-older-than", "24h", "--dry-run", "--archive", filepath.Join(t.TempDir(), "no.jsonl"))
	require.Regexp(t, `^Would prune \d+ streams: \d+ events \([0-9.]+ KiB of payload\) and \d+ projection rows\.\n`, text)
	require.True(t, strings.HasSuffix(text, "Dry run: nothing was changed.\n"), text)
	var again statsJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("stats", "--json")), &again))
	require.Equal(t, st.Events, again.Events, "a dry run changes nothing")

	archive := filepath.Join(t.TempDir(), "pruned.jsonl")
	var rep pruneJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("prune", "--deleted-before", *st.Prunable.DeletedBefore, "--archived-older-than", "24h", "--archive", archive, "--json")), &rep))
	require.False(t, rep.DryRun)
	require.Equal(t, plan.Streams, rep.Streams)
	require.Equal(t, plan.Events, rep.Events)
	require.Equal(t, rep.Events, rep.Archived)
	require.Len(t, rep.Tombstones, int(rep.Streams))
	require.True(t, strings.HasPrefix(e.ok("verify"), "OK: "))
	var after statsJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("stats", "--json")), &after))
	require.Equal(t, st.Events-rep.Events, after.Events)

	copyDB := dbtest.SQLiteFile(t)
	r := e.runIn(t.Context(), nil, "--db", copyDB, "import", archive)
	require.Zero(t, r.code, r.stderr)
	r = e.runIn(t.Context(), nil, "--db", copyDB, "verify")
	require.Zero(t, r.code, r.stderr)

	r = e.run("prune", "--archive", archive, "--deleted-older-than", "1h")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.stderr, "exists; name a new file")
	info, err := os.Stat(archive)
	require.NoError(t, err)
	require.Positive(t, info.Size())
	r = e.run("prune")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.stderr, "say what to prune")
	r = e.run("prune", "--deleted-before", "yesterday")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.stderr, `invalid --deleted-before "yesterday"`)
}
