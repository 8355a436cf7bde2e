package persistence_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// TestTargetFile: File names the database file of a SQLite target only.
func TestTargetFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, file string }{
		{"data/peon.db", "data/peon.db"},
		{"sqlite:///var/lib/peon.db?_fk=1", "/var/lib/peon.db"},
		{":memory:", ""},
		{"sqlite://dev?mode=memory", ""},
		{"postgres://u@h/db", ""},
	} {
		target, err := persistence.ParseDSN(tc.dsn)
		require.NoError(t, err)
		require.Equal(t, tc.file, target.File(), tc.dsn)
	}
}
