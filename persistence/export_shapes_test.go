package persistence

// Hooks of the statement shapes' tests (see shapes.go).

import (
	"context"
	"fmt"

	"modernc.org/sqlite"

	"github.com/peonhq/peon/orchestration"
)

// ShapeTexts, ArrayShapeTexts and MaxPrepared are the bounds shapes.go
// states.
const (
	ShapeTexts      = shapeTexts
	ArrayShapeTexts = arrayShapeTexts
	MaxPrepared     = maxPrepared
	ShapeMemory     = shapeMemory
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

// PrepareAllShapes prepares on s every statement shape the append path
// has (see shapes.go).
func PrepareAllShapes(ctx context.Context, s *Store) {
	var queries []string
	_, suffix := s.d.NotifyingInsert()
	for _, n := range insertShapes(s.d) {
		queries = append(queries, s.stmts.insert(s.d, n, false))
		if suffix != "" {
			queries = append(queries, s.stmts.insert(s.d, n, true))
		}
	}
	for n := 1; n <= headStreams; n *= 2 {
		queries = append(queries, s.stmts.head(s.d, n, true), s.stmts.head(s.d, n, false))
	}
	s.stmts.prepareAll(ctx, s.db, append(queries, s.stmts.command(s.d)))
}

// StatementMemory is how many bytes the statements prepared on one of
// s's SQLite connections take (sqlite3_db_status STMT_USED).
func StatementMemory(ctx context.Context, s *Store) (int, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var used int
	err = conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return fmt.Errorf("driver connection is a %T, not modernc's", dc)
		}
		used, _, err = st.Status(sqlite.DBStatusStmtUsed, false)
		return err
	})
	return used, err
}
