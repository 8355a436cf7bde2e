package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/projector"
)

// ProblemKind says what kind of thing a Problem found wrong. Its values
// are the constants below; peon-store verify --json prints them as they
// are.
type ProblemKind string

// The kinds of Problem that Verify reports.
const (
	ProblemSequence   ProblemKind = "sequence"   // the log's sequences have gaps, or the last one is not the head
	ProblemStream     ProblemKind = "stream"     // a stream's versions do not run 1..n
	ProblemDecode     ProblemKind = "decode"     // a stored row does not decode
	ProblemProjection ProblemKind = "projection" // a projection row differs from a rebuild
	ProblemState      ProblemKind = "state"      // the projectors do not all stand at the head
	ProblemIntegrity  ProblemKind = "integrity"  // the engine's integrity check found damage
)

// Problem is one thing Verify found wrong.
type Problem struct {
	Kind     ProblemKind
	Table    string // for projection problems, and integrity ones where the engine names it
	Key      string // the row's primary key, or the stream or sequence; the index or the place of an integrity problem
	Column   string // "" when the whole row is missing or extra
	Stored   string
	Expected string
	Detail   string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(string(p.Kind))
	if p.Table != "" {
		b.WriteString(" " + p.Table)
	}
	if p.Key != "" {
		b.WriteString(" " + p.Key)
	}
	if p.Column != "" {
		b.WriteString("." + p.Column)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	if p.Stored != "" || p.Expected != "" {
		fmt.Fprintf(&b, ": stored %s, expected %s", p.Stored, p.Expected)
	}
	return b.String()
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Events   int64 // events in the log
	Pruned   int64 // events that retention pruned, as their streams' tombstones count them
	Streams  int64
	Problems []Problem
	// Integrity names the engine's own check of the database's pages and
	// indexes that Verify ran: "integrity_check" on SQLite, "amcheck" on
	// PostgreSQL. It is empty when none could run, and IntegrityNote then
	// says why and what to do.
	Integrity     string
	IntegrityNote string
}

// OK reports whether Verify found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds a report: a broken store could list millions.
const maxProblems = 1000

func (r *VerifyReport) add(p Problem) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, p)
	}
}

// Verify checks the store: the engine's own integrity check finds no
// damaged page or index, sequences run 1..head and each stream's versions
// run 1..n without gaps but those a compaction recorded (see
// docs/RETENTION.md), every payload decodes, and the projection tables
// equal a rebuild from the log. It changes nothing. Its memory does not
// grow with the store: the log is read in pages, the rebuild lives in
// temporary tables inside the database, and only the rows that differ
// reach Go, one at a time.
//
// The integrity check is SQLite's PRAGMA integrity_check, or on
// PostgreSQL the amcheck extension's bt_index_check and verify_heapam
// when the database has amcheck (VerifyReport.Integrity says which ran,
// IntegrityNote why none did). It runs first, and reads every page: an
// index that disagrees with its table is seen by it alone. When it found
// damage and a later check then fails on a database error, Verify returns
// the report with what it found so far and a last problem that says where
// it stopped, instead of the error.
//
// On a file or a server it takes no write lock: it builds the rebuild aside
// as Rebuild does, then, in one read transaction, brings it up to the head
// of that transaction's snapshot and checks the log and the stored tables
// as of that snapshot. Events appended later are not in the report. A
// private in-memory store checks in one write transaction and rolls the
// rebuild back.
func (s *Store) Verify(ctx context.Context) (*VerifyReport, error) {
	r := &VerifyReport{}
	var err error
	ctx, done := s.tel.op(ctx, "verify", "verify")
	defer func() { done(err, "events", r.Events, "problems", len(r.Problems)) }()
	if s.d.Features().Private {
		err = s.verifyInPlace(ctx, r)
	} else if s.closed.Load() {
		err = ErrClosed
	} else if err = s.checkIntegrity(ctx, s.db, r); err == nil {
		err = s.verifyAside(ctx, r)
	}
	if err != nil && ctx.Err() == nil && r.Damaged() {
		r.Problems = append(r.Problems, Problem{Kind: ProblemIntegrity,
			Detail: "Verify stopped after the integrity check found damage, at: " + err.Error()})
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: %w", withContext(ctx, err))
	}
	return r, nil
}

// verifyAside is Verify on a file or a server. A compaction that commits
// while the tables are built aside changes the log below the head: the
// check then builds them again, a few times at most.
func (s *Store) verifyAside(ctx context.Context, r *VerifyReport) error {
	for attempt := 1; ; attempt++ {
		problems := len(r.Problems)
		err := s.verifyAsideOnce(ctx, r)
		if !errors.Is(err, errGapsChanged) || attempt == maxAsideAttempts {
			return err
		}
		r.Problems = r.Problems[:problems]
	}
}

func (s *Store) verifyAsideOnce(ctx context.Context, r *VerifyReport) error {
	var built RebuildResult
	conn, stored, head0, _, err := s.buildAside(ctx, s.verifyProgress, &built)
	if err != nil {
		return err
	}
	// Discarding the connection also ends the read transaction below: the
	// server (or SQLite, on close) rolls it back.
	defer discard(conn)
	// Temporary tables only are written: no write lock.
	if _, err := conn.ExecContext(ctx, s.d.SnapshotBegin()); err != nil {
		return err
	}
	head, err := s.d.LastSequence(ctx, conn) // the first read takes the snapshot
	if err != nil {
		return err
	}
	if now, err := loadGaps(ctx, conn); err != nil {
		return err
	} else if !now.same(built.known) {
		return errGapsChanged
	}
	if head > head0 {
		if _, err := s.applyFrom(ctx, conn, head0+1, head, 0, nil, nil); err != nil {
			return err
		}
	}
	if err := s.verifyLog(ctx, conn, head, r); err != nil {
		return err
	}
	low, agree, err := storedStates(ctx, conn, stored["projection_state"])
	if err != nil {
		return err
	}
	return s.verifyProjections(ctx, conn, head, low, agree, stored, r)
}

// verifyInPlace is Verify on a private in-memory store: the stored tables
// are copied to temporary tables, rebuilt in place and compared with the
// copies, and the transaction is rolled back.
func (s *Store) verifyInPlace(ctx context.Context, r *VerifyReport) error {
	errDone := fmt.Errorf("verify done")
	err := s.writeTx(ctx, func(tx *ent.Tx) error {
		if err := s.checkIntegrity(ctx, tx, r); err != nil {
			return err
		}
		head, err := s.d.LastSequence(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.verifyLog(ctx, tx, head, r); err != nil {
			return err
		}
		// The rollback drops the copies with the rebuild.
		copies := map[string]string{}
		for _, t := range projector.Tables {
			copies[t.Name] = shadowName(t.Name)
			if err := s.d.CreateShadow(ctx, tx, t.Name, shadowName(t.Name)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+shadowName(t.Name)+" SELECT * FROM "+t.Name); err != nil {
				return err
			}
		}
		low, agree, err := s.projectorStates(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := s.rebuildIn(ctx, tx, head, s.verifyProgress); err != nil {
			return err
		}
		if err := s.verifyProjections(ctx, tx, head, low, agree, copies, r); err != nil {
			return err
		}
		return errDone // roll the rebuild back
	})
	if err == errDone {
		return nil
	}
	return err
}

// verifyLog checks that the sequences run 1..head and each stream's
// versions 1..n, but for the gaps a compaction or pruning recorded, that
// the events the records declare removed are exactly those the log lacks,
// and that every payload decodes.
func (s *Store) verifyLog(ctx context.Context, tx querier, head int64, r *VerifyReport) error {
	var err error
	if r.Events, err = queryInt64(ctx, tx, "SELECT COUNT(*) FROM events"); err != nil {
		return err
	}
	maxSeq, err := queryInt64(ctx, tx, "SELECT MAX(sequence) FROM events")
	if err != nil {
		return err
	}
	gaps, err := loadGaps(ctx, tx)
	if err != nil {
		return err
	}
	if r.Pruned, err = queryInt64(ctx, tx, "SELECT COALESCE(SUM(events), 0) FROM stream_tombstones"); err != nil {
		return err
	}
	if err := verifyTombstones(ctx, tx, r); err != nil {
		return err
	}
	if maxSeq > head {
		r.add(Problem{Kind: ProblemSequence, Detail: fmt.Sprintf("the last sequence is %d but %d was taken", maxSeq, head)})
	}
	if removed := gaps.removedFrom(""); removed == 0 && r.Events != maxSeq {
		r.add(Problem{Kind: ProblemSequence, Detail: fmt.Sprintf("%d events but the last sequence is %d: the log has gaps", r.Events, maxSeq)})
	} else if r.Events+removed != head {
		r.add(Problem{Kind: ProblemSequence, Detail: fmt.Sprintf("%d events and %d recorded as removed, but the last sequence taken is %d", r.Events, removed, head)})
	}
	if err := s.verifyStreams(ctx, tx, gaps, r); err != nil {
		return err
	}
	unrecorded := func(prev, next int64) {
		if n, first := gaps.missing(prev, next); n > 0 {
			r.add(Problem{Kind: ProblemSequence, Key: fmt.Sprint(first),
				Detail: fmt.Sprintf("%d sequences missing from %d, before %d, that no compaction or pruning recorded: the log has gaps", n, first, next)})
		}
	}
	prev := int64(0)
	for rec, err := range s.replayFrom(ctx, tx, 1) {
		if err != nil && rec.Sequence == 0 {
			return err
		}
		unrecorded(prev, rec.Sequence)
		prev = rec.Sequence
		if err != nil {
			r.add(Problem{Kind: ProblemDecode, Key: fmt.Sprint(rec.Sequence), Detail: err.Error()})
		}
	}
	unrecorded(prev, head+1)
	return nil
}

// verifyProjections reports projectors that do not all stand at head (low
// and agree as projectorStates returns them), then, table by table, where
// the stored tables, named by stored, differ from the rebuild, which the
// unqualified names reach.
func (s *Store) verifyProjections(ctx context.Context, tx querier, head, low int64, agree bool, stored map[string]string, r *VerifyReport) error {
	if !agree || low != head {
		r.add(Problem{Kind: ProblemState, Table: "projection_state", Detail: fmt.Sprintf("projectors stand at %d (agree: %v), the log at %d", low, agree, head)})
	}
	for _, t := range projector.Tables {
		if err := s.diffTable(ctx, tx, stored[t.Name], t, r); err != nil {
			return err
		}
	}
	return nil
}

// verifyStreams checks that each stream's versions run 1..n but for the
// recorded gaps, and that the stream lacks as many versions as the
// records declare removed from it.
func (s *Store) verifyStreams(ctx context.Context, tx querier, gaps *gapSet, r *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, "SELECT stream_id, COUNT(*), MIN(stream_version), MAX(stream_version) FROM events GROUP BY stream_id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var n, lo, hi int64
		if err := rows.Scan(&stream, &n, &lo, &hi); err != nil {
			return err
		}
		r.Streams++
		removed := gaps.removedFrom(stream)
		if missing, _ := gaps.missingVersions(stream, 0, lo); missing > 0 || hi != n+removed {
			detail := fmt.Sprintf("%d events with versions %d..%d, want 1..%d", n, lo, hi, n)
			if removed > 0 {
				detail = fmt.Sprintf("%d events and %d recorded as removed, with versions %d..%d, want 1..%d", n, removed, lo, hi, n+removed)
			}
			r.add(Problem{Kind: ProblemStream, Key: stream, Detail: detail})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if gaps.records() == 0 {
		return nil // the counts above are the whole check
	}
	// Each hole in a stream's versions lies where a record says.
	holes, err := tx.QueryContext(ctx, `SELECT stream_id, prev, stream_version FROM (
		SELECT stream_id, stream_version, LAG(stream_version) OVER (PARTITION BY stream_id ORDER BY stream_version) AS prev FROM events
	) v WHERE prev IS NOT NULL AND stream_version > prev + 1`)
	if err != nil {
		return err
	}
	defer holes.Close()
	for holes.Next() {
		var stream string
		var prev, next int64
		if err := holes.Scan(&stream, &prev, &next); err != nil {
			return err
		}
		if n, first := gaps.missingVersions(stream, prev, next); n > 0 {
			r.add(Problem{Kind: ProblemStream, Key: stream,
				Detail: fmt.Sprintf("%d versions missing from %d, before %d, that no compaction or pruning recorded", n, first, next)})
		}
	}
	return holes.Err()
}

// verifyTombstones reports a pruned stream that holds events.
func verifyTombstones(ctx context.Context, tx querier, r *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, "SELECT t.stream_id, COUNT(*) FROM stream_tombstones t JOIN events e ON e.stream_id = t.stream_id GROUP BY t.stream_id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var stream string
		var n int64
		if err := rows.Scan(&stream, &n); err != nil {
			return err
		}
		r.add(Problem{Kind: ProblemStream, Key: stream, Detail: fmt.Sprintf("the stream was pruned but holds %d events", n)})
	}
	return rows.Err()
}
