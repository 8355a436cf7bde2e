package persistence

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
)

// TestBurstAfterALullSharesOneGroup: when concurrent Appends come in
// bursts, the first leader of a burst yields before it takes its group,
// so that the burst's other Appends, runnable but not yet running, join
// it, even though the group just before (a lone Append between bursts)
// had one member. With one P and an in-memory database nothing else runs
// while a leader commits, so only the leader's yield lets the others
// queue: without it the burst's Appends commit one by one. (The yield
// is the scheduler's to honour, so the test asks for a few groups, not
// one.) Not parallel: it sets GOMAXPROCS for the whole process.
func TestBurstAfterALullSharesOneGroup(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx := context.Background()
	s, err := OpenMemory(ctx)
	require.NoError(t, err)
	defer s.Close()
	var mu sync.Mutex
	var groups []int
	hold := true // the first group lets the others of its burst queue
	SetGroupObserver(s, func(n int) {
		mu.Lock()
		groups = append(groups, n)
		first := hold
		hold = false
		mu.Unlock()
		if first {
			for range 100 {
				runtime.Gosched()
			}
		}
	})
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	appendOne := func(key string) {
		_, err := s.Append(ctx, nil, orchestration.SettingChanged{Key: key, Value: []byte("1"), At: at})
		require.NoError(t, err)
	}
	burst := func(round int) []int {
		mu.Lock()
		groups = nil
		mu.Unlock()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() { appendOne(fmt.Sprintf("r%d-w%d", round, w)) })
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return groups
	}
	require.Equal(t, []int{1, 15}, burst(0), "the first burst, its first group held while the others queue")
	for round := 1; round <= 3; round++ {
		appendOne(fmt.Sprintf("lull-%d", round)) // a group of one between bursts
		// Without the yield every Append of the burst runs alone, in
		// turn: 16 groups of one.
		g := burst(round)
		require.Less(t, len(g), 4, "burst %d after a lone Append: its groups %v", round, g)
	}
}
