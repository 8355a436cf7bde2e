package persistence

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/projector"
)

// TestPruneKnowsEveryProjectionTable: every projection table is either one
// whose rows Prune removes with their stream (prunedRows) or one that no
// thread or project stream writes (settings). A new projection table must
// say which, or a pruned thread would leave rows that a rebuild does not
// give, and Verify would fail after the prune.
func TestPruneKnowsEveryProjectionTable(t *testing.T) {
	t.Parallel()
	known := map[string]bool{"settings": true}
	for _, r := range prunedRows {
		known[r.table] = true
	}
	for _, tb := range projector.Tables {
		require.True(t, known[tb.Name], "prune.go's prunedRows does not say how to remove the rows of %s with their stream", tb.Name)
	}
}
