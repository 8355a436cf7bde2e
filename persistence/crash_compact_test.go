//go:build unix

package persistence_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// replies returns a thread of n completed messages of k deltas each, the
// work of one run of TestCrashCompact, all at T0 (long ago).
func replies(thread string, n, k int) []orchestration.Event {
	at := persistencetest.T0
	evs := []orchestration.Event{
		orchestration.ThreadCreated{ThreadID: thread, ProjectID: "p", Title: thread, Model: "m", At: at},
		orchestration.TurnStarted{ThreadID: thread, TurnID: "u", At: at},
	}
	for m := range n {
		id := fmt.Sprintf("m%d", m)
		evs = append(evs, orchestration.MessageAdded{ThreadID: thread, TurnID: "u", MessageID: id, Role: orchestration.RoleAssistant, Streaming: true, At: at})
		for d := range k {
			evs = append(evs, orchestration.MessageDelta{ThreadID: thread, TurnID: "u", MessageID: id, Delta: fmt.Sprintf("%d.%d ", m, d), At: at})
		}
		evs = append(evs, orchestration.MessageCompleted{ThreadID: thread, TurnID: "u", MessageID: id, At: at})
	}
	return evs
}

// TestCrashCompact kills a process in the middle of compacting, at random
// moments within the time a compaction takes, and checks that the store
// Verify then calls sound, with the projections they had, and that the
// next compaction finishes the work.
func TestCrashCompact(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashCompact)
}

func crashCompact(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 12)
	if raceBuild {
		kills = kills / 2
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	ctx := t.Context()
	dsn := d.newDSN(t)
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	for run := range kills {
		_, err := s.Append(ctx, nil, replies(fmt.Sprintf("t%d", run), 200, 30)...)
		require.NoError(t, err)
	}
	// How long compacting one run's work takes, on a copy of the first.
	probe, err := persistence.Open(ctx, ":memory:")
	require.NoError(t, err)
	_, err = probe.Append(ctx, nil, replies("t", 200, 30)...)
	require.NoError(t, err)
	begin := time.Now()
	_, err = probe.Compact(ctx, nil)
	require.NoError(t, err)
	window := time.Since(begin)*3 + 50*time.Millisecond
	require.NoError(t, probe.Close())
	require.NoError(t, s.Close())

	during := 0
	for run := range kills {
		c := startHelper(t, "compact", envDSN+"="+dsn)
		c.waitLine(t, "opened", 30*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		lines := c.kill(t)
		if !strings.Contains(strings.Join(lines, "\n"), "compacted") {
			during++
		}
		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "open after a kill during a compaction (%d)", run)
		verifyProjections(t, ctx, s)
		require.NoError(t, s.Close())
	}
	s, err = persistence.Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Compact(ctx, nil)
	require.NoError(t, err)
	verifyProjections(t, ctx, s)
	st, err := s.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Compaction.Events, "the last compaction finished the work")
	require.EqualValues(t, kills*(2+200*3), st.Events, "each message keeps its added, one delta and its completion")
	t.Logf(d.dialect+": %d kills within %v of the open, %d of them before the first compaction ended", kills, window, during)
}
