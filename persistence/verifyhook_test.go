package persistence

import "context"

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
