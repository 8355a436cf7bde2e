package persistence

// SetGroupObserver makes s call observe with the number of Appends each
// time it begins the transaction of a group (one for a lone Append).
func SetGroupObserver(s *Store, observe func(members int)) {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	s.group.onGroup = observe
}

// SetProjectionFault makes the projection of every Append on s for whose
// records fail returns true fail inside the database, after its projection
// statements ran: the Append must then fail alone, and nothing of it be
// stored.
func SetProjectionFault(s *Store, fail func(recs []Recorded) bool) { s.group.failAfter = fail }
