package persistence

import "context"

// listen fires s.grew on PostgreSQL notifications of other processes.
func (s *Store) listen(ctx context.Context) {}
