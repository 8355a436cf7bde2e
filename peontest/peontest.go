package peontest

import (
	"testing"

	"github.com/peonhq/peon/persistence"
)

// Open returns a migrated, empty, private in-memory store
// (persistence.OpenMemory), closed by t.Cleanup when the test ends. It
// opens the store with t.Context(), and fails the test with t.Fatalf if
// the store cannot be opened, and with t.Errorf if it cannot be closed.
func Open(t testing.TB) *persistence.Store {
	t.Helper()
	s, err := persistence.OpenMemory(t.Context())
	if err != nil {
		t.Fatalf("peontest: open an in-memory store: %v", err)
		return nil // t.Fatalf does not return; a testing.TB that does gets nil
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("peontest: close the in-memory store: %v", err)
		}
	})
	return s
}
