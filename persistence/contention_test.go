//go:build unix

package persistence_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/persistence"
)

// TestContentionProcesses runs four writer processes (two goroutines each,
// each goroutine reading its batch back after every append) and two
// follower processes (Subscribe and a ReplayFrom poll) on one brand-new
// SQLite file (or PostgreSQL schema) at once. No caller may see an error
// (SQLITE_BUSY, "database is locked", a serialization failure), no
// follower a gap, and the log must hold every batch whole.
func TestContentionProcesses(t *testing.T) {
	t.Parallel()
	forEachDialect(t, contentionProcesses)
}

func contentionProcesses(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	const writers, goroutines, followers = 4, 2, 2
	batches := 60
	if testing.Short() {
		batches = 8
	}
	dsn := d.newDSN(t)

	want := 0
	for w := range writers {
		for g := range goroutines {
			for b := range batches {
				want += batchSize(seed, w*100+g, b, 20)
			}
		}
	}
	start := time.Now()
	var procs []*child
	for f := range followers {
		procs = append(procs, startHelper(t, "follower", envDSN+"="+dsn, fmt.Sprintf("%s=%d", envCount, want), fmt.Sprintf("%s=%d", envRun, f)))
	}
	for w := range writers {
		procs = append(procs, startHelper(t, "writer", envDSN+"="+dsn,
			fmt.Sprintf("%s=%d", envSeed, seed), fmt.Sprintf("%s=%d", envRun, w),
			fmt.Sprintf("%s=%d", envCount, batches), fmt.Sprintf("%s=%d", envProcs, goroutines)))
	}
	written := 0
	for i, c := range procs {
		out := c.wait(t)
		require.NotEmpty(t, out, "process %d printed nothing; stderr: %s", i, c.stderr)
		last := out[len(out)-1]
		if i < followers {
			require.Equal(t, fmt.Sprintf("followed %d", want), last)
			continue
		}
		var n int
		_, err := fmt.Sscanf(last, "done %d", &n)
		require.NoError(t, err, last)
		written += n
	}
	require.Equal(t, want, written)

	s, err := persistence.Open(t.Context(), dsn)
	require.NoError(t, err)
	defer s.Close()
	check := newLogChecker()
	require.Equal(t, want, check.scan(t, t.Context(), s))
	require.Len(t, check.batches, writers*goroutines*batches, "every batch is in the log")
	for w := range writers {
		for g := range goroutines {
			for b := range batches {
				got := check.batches[batchKey{w*100 + g, b}]
				require.NotNil(t, got, "batch of writer %d goroutine %d number %d", w, g, b)
				require.Equal(t, batchSize(seed, w*100+g, b, 20), got.n)
			}
		}
	}
	verifyProjections(t, t.Context(), s)
	t.Logf(d.dialect+": %d writer processes × %d goroutines and %d followers: %d batches, %d events, in %v",
		writers, goroutines, followers, writers*goroutines*batches, want, time.Since(start).Round(time.Millisecond))
}

// TestConcurrentFirstOpen starts six processes that open the same
// brand-new database file (or empty PostgreSQL schema) at the same moment, each then appending one
// event; every open must succeed, the migrations be applied once, and the
// six events be stored. Repeated for several fresh files.
func TestConcurrentFirstOpen(t *testing.T) {
	t.Parallel()
	forEachDialect(t, concurrentFirstOpen)
}

func concurrentFirstOpen(t *testing.T, d dialectCase) {
	const procs = 6
	rounds := 10
	if testing.Short() {
		rounds = 2
	}
	files, err := migrations.FS.ReadDir(d.dialect)
	require.NoError(t, err)
	for round := range rounds {
		dsn := d.newDSN(t)
		var cs []*child
		for range procs {
			c := helperCommand(t, "open", envDSN+"="+dsn)
			cs = append(cs, c)
		}
		// Start them together: each child is ready to run when Start returns.
		for _, c := range cs {
			startChild(t, c)
		}
		var seqs []int64
		for _, c := range cs {
			out := c.wait(t)
			require.Len(t, out, 1, "stderr: %s", c.stderr)
			var seq int64
			_, err := fmt.Sscanf(out[0], "ok %d", &seq)
			require.NoError(t, err, "round %d: %s", round, strings.Join(out, "\n"))
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, seqs, "round %d", round)
		require.Equal(t, len(files)-1, queryInt(t, dsn, "SELECT COUNT(*) FROM atlas_schema_revisions"))
		require.Equal(t, procs, queryInt(t, dsn, "SELECT COUNT(*) FROM events"))
	}
	t.Logf(d.dialect+": %d rounds of %d processes opening one new file at once", rounds, procs)
}
