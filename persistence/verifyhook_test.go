package persistence

// SetVerifyProgress makes Verify on s call progress as Rebuild calls its
// own, while it builds the rebuild it compares with: a test pauses Verify
// there.
func SetVerifyProgress(s *Store, progress func(done, total int64)) { s.verifyProgress = progress }
