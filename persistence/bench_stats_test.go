package persistence_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/persistence"
)

// BenchmarkStats reads Store.Stats of the 8-agent, 25-hour workload
// (216,916 events) on a SQLite file, opened read-only as peon-store stats
// opens it.
func BenchmarkStats(b *testing.B) {
	path := filepath.Join(b.TempDir(), "peon.db")
	s, err := persistence.Open(b.Context(), path)
	require.NoError(b, err)
	rep, err := workload.Generate(b.Context(), s, workload.Options{Agents: 8, Hours: 25, Seed: 1})
	require.NoError(b, err)
	require.NoError(b, s.Close())
	ro, err := persistence.OpenWith(b.Context(), path, &persistence.Options{ReadOnly: true})
	require.NoError(b, err)
	defer ro.Close()
	for b.Loop() {
		st, err := ro.Stats(b.Context())
		require.NoError(b, err)
		require.Equal(b, int64(rep.Events), st.Events)
	}
	b.ReportMetric(float64(rep.Events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
