package persistence_test

import (
	"sync"
	"testing"

	"github.com/peonhq/peon/persistence"
)

// groupMeter counts the transactions a store's Appends ran in, to report
// the mean number of Appends per group commit.
type groupMeter struct {
	mu              sync.Mutex
	groups, appends int
}

// observe makes m count the groups of s.
func (m *groupMeter) observe(s *persistence.Store) {
	persistence.SetGroupObserver(s, func(n int) {
		m.mu.Lock()
		m.groups++
		m.appends += n
		m.mu.Unlock()
	})
}

// report reports the mean Appends per transaction, and the share of
// groups of one.
func (m *groupMeter) report(b *testing.B) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups > 0 {
		b.ReportMetric(float64(m.appends)/float64(m.groups), "appends/group")
	}
}
