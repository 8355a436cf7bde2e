package persistence

// Hooks for this package's tests, which the public API does not offer.

import (
	"context"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/testhook"
)

// SetVerifyProgress makes Verify on s call progress as Rebuild calls its
// own, while it builds the rebuild it compares with: a test pauses Verify
// there.
func SetVerifyProgress(s *Store, progress func(done, total int64)) { s.verifyProgress = progress }

// CheckIntegrity runs on s only the integrity check that Verify runs
// first, for benchmarks.
func CheckIntegrity(ctx context.Context, s *Store) (*VerifyReport, error) {
	r := &VerifyReport{}
	return r, s.checkIntegrity(ctx, s.db, r)
}

// OpenWithMigrationDir is OpenWith applying dir instead of the embedded
// migration directory (a tampered or a newer one).
func OpenWithMigrationDir(ctx context.Context, dsn string, opts *Options, dir atlasmigrate.Dir) (*Store, error) {
	return OpenWith(testhook.WithMigrationDir(ctx, dir), dsn, opts)
}

// PreparedStatements is how many statements s's statement cache holds
// prepared.
func PreparedStatements(s *Store) int {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return len(s.stmts.prepared)
}

// HeadStatement is the head read of an Append of n streams on s's
// engine (with the last sequence and the command when first), as the
// engine receives it.
func HeadStatement(s *Store, n int, first bool) string { return headStatement(s.d, n, first) }
