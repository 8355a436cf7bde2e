package persistence

// Hooks of the statement shapes' tests (see shapes.go).

import "github.com/peonhq/peon/orchestration"

// ShapeTexts and MaxPrepared are the bounds shapes.go states.
const (
	ShapeTexts  = shapeTexts
	MaxPrepared = maxPrepared
)

// StatementCounts is how many statements s's statement cache prepared,
// and how many ran from their text (parsed again) in an Append's own
// transaction.
func StatementCounts(s *Store) (prepares, unprepared int64) {
	return s.stmts.prepares.Load(), s.stmts.unprepared.Load()
}

// StatementTexts is how many statement texts s's statement cache keeps.
func StatementTexts(s *Store) int {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	return len(s.stmts.texts)
}

// AppendTexts returns the texts of the head reads and INSERTs an Append
// of events with commandID runs on s, in order, without running them (as on an empty log).
func AppendTexts(s *Store, commandID string, events ...orchestration.Event) ([]string, error) {
	b, err := prepare(&AppendOpts{CommandID: commandID}, events)
	if err != nil {
		return nil, err
	}
	reads, head := s.headReads(b)
	var texts []string
	for _, st := range reads {
		texts = append(texts, st.Query)
	}
	last, versions, _ := head()
	recs, err := b.number(last, versions)
	if err != nil {
		return nil, err
	}
	for _, st := range s.inserts(recs, true) {
		texts = append(texts, st.Query)
	}
	return texts, nil
}
