package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var d demoJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("demo", "--seed", "1", "--threads", "3", "--turns", "4", "--json")), &d))

	out := e.ok("stats")
	lines := strings.Split(out, "\n")
	require.Regexp(t, `^`+itoa(d.Events)+` events \([0-9.]+ KiB of payload\) in 7 streams; head at sequence `+itoa(d.Events)+`\.$`, lines[0])
	require.Regexp(t, `(?m)^message\.delta +`+itoa(d.Deltas)+` +[0-9.]+ KiB +[0-9.]+%$`, out)
	require.Regexp(t, `(?m)^The 7 largest streams:$`, out)
	require.Regexp(t, `(?m)^Database: [0-9.]+ KiB in \d+ pages of 4096 bytes, \d+ free \(.*\); file .*, write-ahead log .*\.$`, out)
	require.Regexp(t, `(?m)^events +[0-9.]+ KiB +[0-9.]+ KiB +[0-9.]+ KiB$`, out)
	// The demo's 11 replies were completed in November 2026, over a day ago.
	require.Contains(t, out, "Compaction (messages completed over 1 day ago): would fold the deltas of 11 messages into one each, removing 139 events (59.9% of the log).\n")
	require.Contains(t, out, "Deleted threads and projects: 0 streams, 0 events, 0 B.\n")
	require.Regexp(t, `(?m)^Archived threads: 1 stream, 89 events, [0-9.]+ KiB\.$`, out)
	require.True(t, strings.HasSuffix(out, "Retention: off (--prune-deleted-after, --prune-archived-after); it would prune nothing.\n"), out)

	policy := e.ok("stats", "--prune-archived-after", "48h", "--prune-deleted-after", "36h", "--largest", "1")
	require.Contains(t, policy, "The 1 largest streams:\n")
	require.Regexp(t, `Retention \(deleted over 36h ago or archived over 2 days ago\): would prune 1 stream, 89 events, [0-9.]+ KiB\.\n$`, policy)

	js := e.ok("stats", "--json")
	keys := reportKeys(t, js)
	require.Equal(t, []string{"archived", "archived.bytes", "archived.events", "archived.streams", "at", "bytes",
		"compaction", "compaction.before", "compaction.events", "compaction.messages",
		"database", "database.bytes", "database.file_bytes", "database.free_pages", "database.page_count", "database.page_size",
		"database.tables", "database.tables.index_bytes", "database.tables.table", "database.tables.table_bytes", "database.tables.total_bytes",
		"database.wal_bytes", "deleted", "deleted.bytes", "deleted.events", "deleted.streams", "elapsed_seconds", "events", "head",
		"largest", "largest.bytes", "largest.events", "largest.stream", "largest.version",
		"prunable", "prunable.archived_before", "prunable.bytes", "prunable.deleted_before", "prunable.events", "prunable.streams",
		"streams", "types", "types.bytes", "types.events", "types.type"}, keys)
	requireDocumented(t, keys)
	var st statsJSON
	require.NoError(t, json.Unmarshal([]byte(js), &st))
	require.Equal(t, int64(d.Events), st.Events)
	var n, b int64
	for _, ty := range st.Types {
		n += ty.Events
		b += ty.Bytes
	}
	require.Equal(t, st.Events, n)
	require.Equal(t, st.Bytes, b)
	require.Len(t, st.Largest, 7)
	require.Equal(t, statsCompactionJSON{Before: st.Compaction.Before, Messages: 11, Events: 139}, st.Compaction)
	require.Equal(t, int64(1), st.Archived.Streams)
	require.Nil(t, st.Prunable.DeletedBefore)
	require.Equal(t, int64(4096), st.Database.PageSize)

	r := e.run("stats", "--compact-after", "-1h")
	require.Equal(t, ExitFailure, r.code)
	require.Contains(t, r.stderr, "stats: retention: CompactAfter is -1h0m0s; want 0 or more")
}

func TestDemoWorkload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	js := e.ok("demo", "--agents", "2", "--hours", "1", "--seed", "3", "--json")
	keys := reportKeys(t, js)
	require.Equal(t, []string{"agents", "appends", "archived_threads", "checkpoints", "deleted_projects", "deleted_threads", "deltas",
		"elapsed_seconds", "end", "events", "failed_turns", "hours", "interrupted_turns", "messages", "projects", "reverts",
		"seed", "start", "store", "threads", "turns"}, keys)
	requireDocumented(t, keys)
	var w workloadJSON
	require.NoError(t, json.Unmarshal([]byte(js), &w))
	require.Equal(t, "2026-11-02T08:00:00Z", w.Start)
	require.Positive(t, w.DeletedThreads)
	require.Positive(t, w.ArchivedThreads)
	require.Equal(t, 1, w.DeletedProjects)
	require.Contains(t, e.ok("verify"), "OK: "+itoa(w.Events)+" events in ")

	var st statsJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("stats", "--json")), &st))
	require.Equal(t, int64(w.Events), st.Events)
	require.Equal(t, int64(w.DeletedThreads+w.DeletedProjects), st.Deleted.Streams)
	require.Positive(t, st.Archived.Streams)
	require.LessOrEqual(t, st.Archived.Streams, int64(w.ArchivedThreads), "archived and not deleted")

	text := e.ok("demo", "--agents", "2", "--hours", "0.5", "--seed", "4")
	require.Regexp(t, `^Wrote \d+ events in \d+ appends to `+e.db+` \(seed 4\) in .* \(\d+ events/s\):\n  2 agents over 0\.5 hours of simulated time, 2026-11-02 08:00:00 to 2026-11-02 08:`, text)

	r := e.run("demo", "--agents", "2", "--turns", "3")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.stderr, "--agents and --hours write a workload of their own")
	r = e.run("demo", "--agents", "2", "--hours", "1", "--seed", "3")
	require.Equal(t, ExitFailure, r.code)
	require.Contains(t, r.stderr, "already holds the workload of seed 3")
}
