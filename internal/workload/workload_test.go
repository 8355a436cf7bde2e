package workload_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// volatile are the export's fields that differ between two stores
// holding the same events.
var volatile = regexp.MustCompile(`"(event_id|recorded_at)":"[^"]*"`)

func export(t *testing.T, s *persistence.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := s.Export(t.Context(), &b, nil)
	require.NoError(t, err)
	return volatile.ReplaceAll(b.Bytes(), []byte(`"$1":"~"`))
}

func generate(t *testing.T, o workload.Options) (*persistence.Store, workload.Report) {
	t.Helper()
	s, err := persistence.OpenMemory(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	rep, err := workload.Generate(t.Context(), s, o)
	require.NoError(t, err)
	return s, rep
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	o := workload.Options{Agents: 2, Hours: 1, Seed: 7}
	s1, rep := generate(t, o)
	s2, rep2 := generate(t, o)

	// The same seed writes the same events, the same times and ids.
	require.Equal(t, export(t, s1), export(t, s2))
	rep.Elapsed, rep2.Elapsed = 0, 0
	require.Equal(t, rep, rep2)
	s3, _ := generate(t, workload.Options{Agents: 2, Hours: 1, Seed: 8})
	require.NotEqual(t, export(t, s1), export(t, s3))

	head, err := s1.Head(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(rep.Events), head)
	require.Equal(t, workload.Epoch, rep.Start)
	require.True(t, rep.End.After(rep.Start.Add(50*time.Minute)), "the agents work about an hour: %s", rep.End)
	require.False(t, rep.End.After(rep.Start.Add(90*time.Minute)), "the agents work about an hour: %s", rep.End)

	r, err := s1.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Problems)

	// What the report counts is what the projections show.
	threads, err := projection.NewReader(s1).Threads(t.Context(), &projection.ThreadFilter{IncludeArchived: true, IncludeDeleted: true})
	require.NoError(t, err)
	var archived, deleted, turns int
	for _, th := range threads {
		if th.ArchivedAt != nil {
			archived++
		}
		if th.DeletedAt != nil {
			deleted++
		}
		turns += th.TurnCount
	}
	require.Equal(t, rep.Threads, len(threads))
	require.Positive(t, rep.ArchivedThreads)
	require.Positive(t, rep.DeletedThreads)
	require.Equal(t, rep.ArchivedThreads, archived)
	require.Equal(t, rep.DeletedThreads, deleted)
	require.Equal(t, rep.Turns, turns)
	projects, err := projection.NewReader(s1).Projects(t.Context(), &projection.ProjectFilter{IncludeDeleted: true})
	require.NoError(t, err)
	var gone int
	for _, p := range projects {
		if p.DeletedAt != nil {
			gone++
		}
	}
	require.Equal(t, rep.Projects, len(projects))
	require.Equal(t, 1, rep.DeletedProjects)
	require.Equal(t, rep.DeletedProjects, gone)

	// Replies stream in deltas of 20 to 80 bytes.
	st, err := s1.Stats(t.Context())
	require.NoError(t, err)
	for _, ty := range st.Types {
		if ty.Type == "message.delta" {
			require.Equal(t, int64(rep.Deltas), ty.Events)
		}
	}
	rows, err := s1.Client().QueryContext(t.Context(), "SELECT MIN(length(json_extract(payload, '$.delta'))), MAX(length(json_extract(payload, '$.delta'))) FROM events WHERE event_type = 'message.delta'")
	require.NoError(t, err)
	require.True(t, rows.Next())
	var lo, hi int
	require.NoError(t, rows.Scan(&lo, &hi))
	require.NoError(t, rows.Close())
	require.GreaterOrEqual(t, lo, 20)
	require.LessOrEqual(t, hi, 80)

	// The same seed again on the same store is refused.
	_, err = workload.Generate(t.Context(), s1, o)
	require.ErrorContains(t, err, "already holds the workload of seed 7")
}

// TestGenerateLong writes the 8-agent, 25-hour workload into a file store
// (PEON_LONG=1): at least 200,000 events, and a store Verify calls sound.
func TestGenerateLong(t *testing.T) {
	if os.Getenv("PEON_LONG") != "1" {
		t.Skip("set PEON_LONG=1 to write the 8-agent, 25-hour workload")
	}
	s, err := persistence.Open(t.Context(), filepath.Join(t.TempDir(), "peon.db"))
	require.NoError(t, err)
	defer s.Close()
	rep, err := workload.Generate(t.Context(), s, workload.Options{Agents: 8, Hours: 25, Seed: 1})
	require.NoError(t, err)
	t.Logf("%d events in %d appends in %s (%.0f events/s): %d threads (%d archived, %d deleted), %d deltas",
		rep.Events, rep.Appends, rep.Elapsed, float64(rep.Events)/rep.Elapsed.Seconds(), rep.Threads, rep.ArchivedThreads, rep.DeletedThreads, rep.Deltas)
	require.GreaterOrEqual(t, rep.Events, 200_000)
	r, err := s.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Problems)
}
