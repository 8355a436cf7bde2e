//go:build unix

package persistence_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// pruneCrashThreads is how many deleted threads of pruneCrashEvents
// events each, interleaved with a live thread's, the crash test prunes.
const (
	pruneCrashThreads = 40
	pruneCrashEvents  = 25
)

// writePruneFixture appends a project, a live thread and
// pruneCrashThreads threads deleted two days ago, their events
// interleaved, and returns the event count of each deleted thread's stream.
func writePruneFixture(t *testing.T, ctx context.Context, s *persistence.Store) {
	t.Helper()
	at := time.Now().UTC().Add(-48 * time.Hour)
	_, err := s.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at},
		orchestration.ThreadCreated{ThreadID: "live", ProjectID: "p", Title: "live", Model: "m", At: at})
	require.NoError(t, err)
	for i := range pruneCrashThreads {
		id := fmt.Sprintf("t%02d", i)
		evs := []orchestration.Event{orchestration.ThreadCreated{ThreadID: id, ProjectID: "p", Title: id, Model: "m", At: at}}
		for j := range pruneCrashEvents - 2 {
			evs = append(evs, orchestration.ThreadRenamed{ThreadID: id, Title: fmt.Sprintf("%s-%d", id, j), At: at},
				orchestration.ThreadRenamed{ThreadID: "live", Title: fmt.Sprintf("live-%d-%d", i, j), At: at})
		}
		evs = append(evs, orchestration.ThreadDeleted{ThreadID: id, At: at})
		_, err := s.Append(ctx, nil, evs...)
		require.NoError(t, err)
	}
}

// TestCrashPrune kills a process while it prunes, at random moments
// within the time a prune takes, and checks that every stream is either
// whole or pruned with its tombstone, that Verify finds the store sound,
// that a pruned stream refuses appends and that no sequence is reused.
func TestCrashPrune(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashPrune)
}

func crashPrune(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 10)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := t.Context()

	// How long a prune takes here, to aim the kills.
	s, err := persistence.Open(ctx, d.newDSN(t))
	require.NoError(t, err)
	writePruneFixture(t, ctx, s)
	begin := time.Now()
	rep, err := s.Prune(ctx, &persistence.PruneOpts{DeletedBefore: time.Now()})
	require.NoError(t, err)
	require.Equal(t, int64(pruneCrashThreads), rep.Streams)
	window := 2 * time.Since(begin)
	require.NoError(t, s.Close())
	t.Logf(d.dialect+": a prune of %d streams takes about %v; killing within %v of the open", rep.Streams, window/2, window)

	partial, none := 0, 0
	for run := range kills {
		dsn := d.newDSN(t)
		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err)
		writePruneFixture(t, ctx, s)
		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Close())

		c := startHelper(t, "prune", envDSN+"="+dsn)
		c.waitLine(t, "opened", 30*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		c.kill(t)

		s, err = persistence.Open(ctx, dsn)
		require.NoError(t, err, "open after a kill during a prune (%d)", run)
		verifyProjections(t, ctx, s)
		tombs, err := s.Tombstones(ctx)
		require.NoError(t, err)
		pruned := map[string]bool{}
		for _, ts := range tombs {
			require.Equal(t, int64(pruneCrashEvents), ts.Events, ts.Stream)
			pruned[ts.Stream] = true
		}
		switch {
		case len(tombs) == 0:
			none++
		case len(tombs) < pruneCrashThreads:
			partial++
		}
		for i := range pruneCrashThreads {
			stream := orchestration.ThreadStream(fmt.Sprintf("t%02d", i))
			v, err := s.StreamVersion(ctx, stream)
			if pruned[stream] {
				require.ErrorIs(t, err, persistence.ErrStreamPruned, stream)
			} else {
				require.NoError(t, err)
				require.Equal(t, int64(pruneCrashEvents), v, "%s is whole", stream)
			}
		}
		recs, err := s.Append(ctx, nil, orchestration.ThreadRenamed{ThreadID: "live", Title: "after", At: time.Now()})
		require.NoError(t, err)
		require.Equal(t, head+1, recs[0].Sequence, "no sequence reused")
		require.NoError(t, s.Close())
	}
	t.Logf(d.dialect+": %d kills, %d of them part-way through the prune, %d before it pruned a stream", kills, partial, none)
}

// helperPrune prunes every deleted stream, then says so.
func helperPrune(ctx context.Context) error {
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	say("opened")
	rep, err := s.Prune(ctx, &persistence.PruneOpts{DeletedBefore: time.Now()})
	if err != nil {
		return err
	}
	say("pruned %d", rep.Streams)
	return s.Close()
}
