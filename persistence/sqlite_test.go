package persistence_test

import (
	"path/filepath"
	"testing"

	"github.com/peonhq/peon/persistence/persistencetest"
)

func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN: func(t *testing.T) string { return ":memory:" },
	})
}

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "peon.db") },
		Durable: true,
	})
}
