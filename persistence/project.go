package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/projection"
)

// project applies recs to the projection tables inside tx, the append's
// own transaction.
func (s *Store) project(ctx context.Context, tx querier, recs []Recorded) error {
	if s.opts.NoProjections {
		return nil
	}
	evs := make([]projection.Event, len(recs))
	for i := range recs {
		evs[i] = projection.Event{Sequence: recs[i].Sequence, Event: recs[i].Event}
	}
	return projection.NewApplier(tx, s.d.name()).Apply(ctx, evs)
}

// RebuildOpts are the optional inputs of Rebuild. A nil *RebuildOpts is the
// same as the zero value.
type RebuildOpts struct {
	// Progress, when set, is called after each page of events with the
	// events done so far and the total; the last call has done == total.
	Progress func(done, total int64)
	// Result, when set, receives what the rebuild applied and what it had
	// to leave out, once it has committed.
	Result *RebuildResult
}

// RebuildResult says what a Rebuild applied and what it had to leave out.
// A log that Verify finds sound leaves nothing out.
type RebuildResult struct {
	Events int64 // events applied to the new tables
	// Undecodable counts the stored rows that cannot be decoded (an
	// unknown type, a broken payload), which the new tables lack;
	// FirstUndecodable is the first of them, nil when none.
	Undecodable      int64
	FirstUndecodable *DecodeError
	// Missing counts the sequences up to the head that the log does not
	// hold (rows removed by hand leave such gaps); FirstMissing is the
	// lowest of them, 0 when none.
	Missing      int64
	FirstMissing int64
}

// skipped records an undecodable row.
func (r *RebuildResult) skipped(err error) {
	if r == nil {
		return
	}
	r.Undecodable++
	var de *DecodeError
	if r.FirstUndecodable == nil && errors.As(err, &de) {
		r.FirstUndecodable = de
	}
}

// gap records the sequences after prev and before next as missing.
func (r *RebuildResult) gap(prev, next int64) {
	if r == nil || next <= prev+1 {
		return
	}
	if r.Missing == 0 {
		r.FirstMissing = prev + 1
	}
	r.Missing += next - prev - 1
}

// writeTx runs fn in a write transaction of its own, holding the store's
// write lock, and commits when fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if err := s.writable(); err != nil {
		return err
	}
	if s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.client.BeginTx(ctx, s.d.appendTxOptions())
	if err != nil {
		return err
	}
	if err := s.d.lockAppend(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CatchUp brings the projections up to the head of the log, for example
// after an import or when a projector was added, and returns how many
// events it applied. Open calls it. When all projectors stand at the same
// sequence it applies the events after it, in pages, in one transaction;
// when they disagree it rebuilds, as Rebuild does.
func (s *Store) CatchUp(ctx context.Context) (int64, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	// A read first: projections that stand at the head need no write lock,
	// so that opening a store does not wait for another writer.
	if ok, err := s.projectionsAtHead(ctx); err != nil {
		return 0, fmt.Errorf("catch up projections: %w", err)
	} else if ok {
		return 0, nil
	}
	var applied int64
	ctx, started, done := s.tel.quietOp(ctx, "catch_up", "projection catch-up")
	progress := s.tel.progress("projection catch-up", nil)
	err := s.writeTx(ctx, func(tx *ent.Tx) error {
		head, err := s.d.lastSequence(ctx, tx)
		if err != nil {
			return err
		}
		from, agree, err := s.projectorStates(ctx, tx)
		if err != nil {
			return err
		}
		if agree && from == head {
			return nil
		}
		started("from", from+1, "head", head, "rebuild", !agree)
		if !agree {
			if !s.target.Memory {
				return errDisagree // rebuilt below, outside this transaction
			}
			var res RebuildResult
			res, err = s.rebuildIn(ctx, tx, head, progress)
			applied = res.Events
			return err
		}
		applied, err = s.applyFrom(ctx, tx, from+1, head, head-from, progress, nil)
		return err
	})
	if errors.Is(err, errDisagree) {
		var res RebuildResult
		res, err = s.rebuildShadow(ctx, progress)
		applied = res.Events
	}
	done(err, "events", applied)
	if err != nil {
		return 0, fmt.Errorf("catch up projections: %w", withContext(ctx, err))
	}
	return applied, nil
}

// withContext returns err, which work under ctx failed with, as an error
// that also wraps ctx's when ctx has ended: a driver may report a
// statement that the end of ctx cut short with an error of its own
// (SQLite's "interrupted (9)", database/sql's "driver: bad connection"),
// and callers tell a cancel by errors.Is(err, context.Canceled).
func withContext(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if err == nil || cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", cerr, err)
}

// projectionsAtHead reports whether every projector has its
// projection_state row and all stand at the head of the log, in one
// statement, so from one snapshot.
func (s *Store) projectionsAtHead(ctx context.Context) (bool, error) {
	in := strings.TrimSuffix(strings.Repeat("?, ", len(projection.Names)), ", ")
	args := make([]any, len(projection.Names))
	for i, n := range projection.Names {
		args[i] = n
	}
	var head, known, lo, hi int64
	err := s.db.QueryRowContext(ctx, s.d.bind("SELECT COALESCE("+s.d.lastSequenceSQL()+", 0), "+
		"COALESCE(SUM(CASE WHEN projector IN ("+in+") THEN 1 ELSE 0 END), 0), "+
		"COALESCE(MIN(last_sequence), -1), COALESCE(MAX(last_sequence), -1) FROM projection_state"), args...).
		Scan(&head, &known, &lo, &hi)
	if err != nil {
		return false, fmt.Errorf("read projection state: %w", err)
	}
	return known == int64(len(projection.Names)) && lo == head && hi == head, nil
}

// errDisagree ends CatchUp's transaction when the projectors disagree, to
// rebuild with rebuildShadow.
var errDisagree = errors.New("projectors disagree")

// projectorStates makes sure every projector has its projection_state row
// (a new one starts at 0) and reports the lowest last_sequence and whether
// all agree.
func (s *Store) projectorStates(ctx context.Context, tx querier) (low int64, agree bool, err error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range projection.Names {
		if _, err := tx.ExecContext(ctx, s.d.bind(
			"INSERT INTO projection_state (projector, last_sequence, updated_at) VALUES (?, 0, ?) ON CONFLICT (projector) DO NOTHING"),
			name, now); err != nil {
			return 0, false, err
		}
	}
	lo, err := queryInt64(ctx, tx, "SELECT MIN(last_sequence) FROM projection_state")
	if err != nil {
		return 0, false, err
	}
	hi, err := queryInt64(ctx, tx, "SELECT MAX(last_sequence) FROM projection_state")
	return lo, lo == hi, err
}

// applyFrom applies the events from sequence `from` up to head through tx,
// page by page, reporting progress as done+n of total. It skips rows that
// cannot be decoded, and tallies them and the gaps in res, when not nil.
func (s *Store) applyFrom(ctx context.Context, tx querier, from, head, total int64, progress func(done, total int64), res *RebuildResult) (int64, error) {
	ap := projection.NewApplier(tx, s.d.name())
	var (
		n     int64
		batch = make([]projection.Event, 0, pageSize)
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := ap.Apply(ctx, batch)
		n += int64(len(batch))
		batch = batch[:0]
		if progress != nil {
			progress(n, total)
		}
		return err
	}
	prev := from - 1
	for rec, err := range s.pages(ctx, tx, "sequence <= ? AND sequence >= ?", "sequence", []any{head}, from,
		func(r *Recorded) int64 { return r.Sequence + 1 }) {
		if err != nil && rec.Sequence == 0 {
			return n, err
		}
		res.gap(prev, rec.Sequence)
		prev = rec.Sequence
		if err != nil {
			res.skipped(err) // undecodable: nothing to apply; Verify reports it
			continue
		}
		batch = append(batch, projection.Event{Sequence: rec.Sequence, Event: rec.Event})
		if len(batch) == pageSize {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	res.gap(prev, head+1)
	if progress != nil && total == 0 {
		progress(n, n)
	}
	return n, ap.Advance(ctx, head)
}

// Rebuild recomputes every projection table from the log. Readers see the
// old tables until it commits, then the new ones, never a half-built table.
// It streams the log in pages, so memory stays flat.
//
// On a file or a server it builds the new tables in temporary tables of
// the same names on a connection of its own, outside any write
// transaction, so appends (of this and other processes) go on meanwhile;
// then, in one short write transaction, it applies what was appended since
// and copies the temporary tables over the stored ones (see
// docs/PROJECTIONS.md). A private in-memory store has one connection, and
// no other process, so it rebuilds in one write transaction.
//
// A stored row that cannot be decoded is left out of the new tables, and a
// sequence missing from the log is passed over; opts.Result counts both.
func (s *Store) Rebuild(ctx context.Context, opts *RebuildOpts) error {
	if err := s.writable(); err != nil {
		return fmt.Errorf("rebuild projections: %w", err)
	}
	if opts == nil {
		opts = &RebuildOpts{}
	}
	var (
		res RebuildResult
		err error
	)
	ctx, done := s.tel.op(ctx, "rebuild", "projection rebuild")
	progress := s.tel.progress("projection rebuild", opts.Progress)
	if s.target.Memory {
		err = s.writeTx(ctx, func(tx *ent.Tx) error {
			head, err := s.d.lastSequence(ctx, tx)
			if err != nil {
				return err
			}
			if _, _, err := s.projectorStates(ctx, tx); err != nil {
				return err
			}
			res, err = s.rebuildIn(ctx, tx, head, progress)
			return err
		})
	} else {
		res, err = s.rebuildShadow(ctx, progress)
	}
	done(err, "events", res.Events, "undecodable", res.Undecodable, "missing", res.Missing)
	if err != nil {
		return fmt.Errorf("rebuild projections: %w", withContext(ctx, err))
	}
	if opts.Result != nil {
		*opts.Result = res
	}
	return nil
}

// shadowChunk is how many events buildAside applies
// per read transaction: a long one would keep SQLite from checkpointing
// the WAL, or PostgreSQL from vacuuming.
const shadowChunk = 20 * pageSize

// rebuildShadow rebuilds the projections in temporary tables and swaps
// them in, and returns what it applied and skipped. Only the swap holds the
// write lock.
func (s *Store) rebuildShadow(ctx context.Context, progress func(done, total int64)) (RebuildResult, error) {
	var res RebuildResult
	conn, stored, head, done, err := s.buildAside(ctx, progress, &res)
	res.Events = done
	if err != nil {
		return res, err
	}
	defer discard(conn)

	// Phase 2: under the write lock, as an append, the events appended
	// meanwhile, then the swap.
	err = func() error {
		if s.serial {
			s.writeMu.Lock()
			defer s.writeMu.Unlock()
		}
		tx, err := conn.BeginTx(ctx, s.d.appendTxOptions())
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := s.d.lockAppend(ctx, tx); err != nil {
			return err
		}
		last, err := s.d.lastSequence(ctx, tx)
		if err != nil {
			return err
		}
		if last > head {
			n, err := s.applyFrom(ctx, tx, head+1, last, 0, nil, &res)
			res.Events += n
			if err != nil {
				return err
			}
			if progress != nil {
				progress(res.Events, last)
			}
		}
		if err := s.swapIn(ctx, tx, stored, last); err != nil {
			return err
		}
		return tx.Commit()
	}()
	return res, err
}

// swapIn replaces, inside tx, the stored projection tables (their
// qualified names in stored) with the temporary tables of the same names
// on tx's connection, and moves every projector to last.
func (s *Store) swapIn(ctx context.Context, tx querier, stored map[string]string, last int64) error {
	for _, t := range projection.Tables {
		cols, err := columns(ctx, tx, t.Name)
		if err != nil {
			return err
		}
		for i, c := range cols {
			cols[i] = `"` + c + `"`
		}
		list := strings.Join(cols, ", ")
		order := ""
		if t.Name == "checkpoints" {
			// The surrogate id comes from the stored table's counter,
			// in the order the rows were made.
			order = " ORDER BY id"
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+stored[t.Name]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+stored[t.Name]+" ("+list+") SELECT "+list+" FROM "+t.Name+order); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range projection.Names {
		if _, err := tx.ExecContext(ctx, s.d.bind(
			"INSERT INTO "+stored["projection_state"]+" (projector, last_sequence, updated_at) VALUES (?, ?, ?) ON CONFLICT (projector) DO NOTHING"),
			name, last, now); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.bind("UPDATE "+stored["projection_state"]+" SET last_sequence = ?, updated_at = ?"), last, now); err != nil {
		return err
	}
	return nil
}

// buildAside is the first phase of rebuildShadow and Verify: on a
// connection of its own it creates temporary tables of the projection
// tables and projection_state, applies to them the log up to the head seen
// now, in read transactions, and returns the connection, the qualified
// names of the stored tables, that head and how many events it applied; it
// tallies what it skipped in res, when not nil. The caller must discard
// the connection.
//
// The connection's temporary tables hide the stored ones: a statement on
// it that names a projection table unqualified reaches the temporary table
// (SQLite and PostgreSQL look in the session's temp schema first). An
// append on that connection would update the temporary table only, so the
// connection never goes back to the pool: it is discarded whatever happens.
func (s *Store) buildAside(ctx context.Context, progress func(done, total int64), res *RebuildResult) (*sql.Conn, map[string]string, int64, int64, error) {
	if s.closed.Load() {
		return nil, nil, 0, 0, ErrClosed
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	stored, head, done, err := s.buildOn(ctx, conn, progress, res)
	if err != nil {
		discard(conn)
		return nil, nil, 0, done, err
	}
	return conn, stored, head, done, nil
}

// buildOn is buildAside on conn, which the caller discards.
func (s *Store) buildOn(ctx context.Context, conn *sql.Conn, progress func(done, total int64), res *RebuildResult) (stored map[string]string, head, done int64, err error) {
	// A read-only store's connections refuse every write; this one writes
	// only its temporary tables, and is discarded.
	if s.opts.ReadOnly {
		if err = s.d.allowTempWrites(ctx, conn); err != nil {
			return nil, 0, 0, err
		}
	}
	// projection_state gets a temporary table too: Applier.Advance writes
	// it, and a write to the stored one would take the write lock.
	names := []string{"projection_state"}
	for _, t := range projection.Tables {
		names = append(names, t.Name)
	}
	if stored, err = s.d.shadowTables(ctx, conn, names); err != nil {
		return nil, 0, 0, err
	}

	// The log up to the head seen now, in read transactions. The log below
	// the head does not change, so each chunk may read its own snapshot.
	if head, err = s.d.lastSequence(ctx, conn); err != nil {
		return nil, 0, 0, err
	}
	if progress != nil {
		progress(0, head)
	}
	for from := int64(1); from <= head; from += shadowChunk {
		to := min(from+shadowChunk-1, head)
		// DEFERRED on SQLite: no write lock. A failure leaves the
		// transaction open: discarding the connection ends it.
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return nil, 0, done, err
		}
		var report func(n, total int64)
		if progress != nil {
			report = func(n, _ int64) { progress(done+n, head) }
		}
		n, err := s.applyFrom(ctx, conn, from, to, head, report, res)
		done += n
		if err != nil {
			return nil, 0, done, err
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return nil, 0, done, err
		}
	}
	return stored, head, done, nil
}

// discard closes conn and keeps it from going back to the pool.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// rebuildIn empties the projection tables and applies the log up to head.
func (s *Store) rebuildIn(ctx context.Context, tx querier, head int64, progress func(done, total int64)) (RebuildResult, error) {
	var res RebuildResult
	for _, t := range projection.Tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.Name); err != nil {
			return res, err
		}
	}
	if progress != nil {
		progress(0, head)
	}
	var err error
	res.Events, err = s.applyFrom(ctx, tx, 1, head, head, progress, &res)
	return res, err
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Kind     string // "sequence", "stream", "decode", "projection", "state", "integrity"
	Table    string // for projection problems, and integrity ones where the engine names it
	Key      string // the row's primary key, or the stream or sequence; the index or the place of an integrity problem
	Column   string // "" when the whole row is missing or extra
	Stored   string
	Expected string
	Detail   string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
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
// damaged page or index, sequences run 1..head without gaps, each stream's
// versions run 1..n, every payload decodes, and the projection tables
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
	if s.target.Memory {
		err = s.verifyInPlace(ctx, r)
	} else if s.closed.Load() {
		err = ErrClosed
	} else if err = s.checkIntegrity(ctx, s.db, r); err == nil {
		err = s.verifyAside(ctx, r)
	}
	if err != nil && ctx.Err() == nil && r.Damaged() {
		r.Problems = append(r.Problems, Problem{Kind: "integrity",
			Detail: "Verify stopped after the integrity check found damage, at: " + err.Error()})
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: %w", withContext(ctx, err))
	}
	return r, nil
}

// verifyAside is Verify on a file or a server.
func (s *Store) verifyAside(ctx context.Context, r *VerifyReport) error {
	conn, stored, built, _, err := s.buildAside(ctx, s.verifyProgress, nil)
	if err != nil {
		return err
	}
	// Discarding the connection also ends the read transaction below: the
	// server (or SQLite, on close) rolls it back.
	defer discard(conn)
	// Temporary tables only are written: no write lock.
	if _, err := conn.ExecContext(ctx, s.d.snapshotBegin()); err != nil {
		return err
	}
	head, err := s.d.lastSequence(ctx, conn) // the first read takes the snapshot
	if err != nil {
		return err
	}
	if head > built {
		if _, err := s.applyFrom(ctx, conn, built+1, head, 0, nil, nil); err != nil {
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
		head, err := s.d.lastSequence(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.verifyLog(ctx, tx, head, r); err != nil {
			return err
		}
		// The rollback drops the copies with the rebuild.
		copies := map[string]string{}
		for _, t := range projection.Tables {
			copies[t.Name] = shadowName(t.Name)
			if err := s.d.createShadow(ctx, tx, t.Name, shadowName(t.Name)); err != nil {
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

// verifyLog checks that the sequences run 1..head without gaps, each
// stream's versions run 1..n and every payload decodes.
func (s *Store) verifyLog(ctx context.Context, tx querier, head int64, r *VerifyReport) error {
	var err error
	if r.Events, err = queryInt64(ctx, tx, "SELECT COUNT(*) FROM events"); err != nil {
		return err
	}
	maxSeq, err := queryInt64(ctx, tx, "SELECT MAX(sequence) FROM events")
	if err != nil {
		return err
	}
	if r.Events != maxSeq {
		r.add(Problem{Kind: "sequence", Detail: fmt.Sprintf("%d events but the last sequence is %d: the log has gaps", r.Events, maxSeq)})
	}
	if maxSeq != head {
		r.add(Problem{Kind: "sequence", Detail: fmt.Sprintf("the last sequence is %d but %d was taken", maxSeq, head)})
	}
	if err := s.verifyStreams(ctx, tx, r); err != nil {
		return err
	}
	for rec, err := range s.pages(ctx, tx, "sequence >= ?", "sequence", nil, 1, func(r *Recorded) int64 { return r.Sequence + 1 }) {
		if err != nil && rec.Sequence == 0 {
			return err
		}
		if err != nil {
			r.add(Problem{Kind: "decode", Key: fmt.Sprint(rec.Sequence), Detail: err.Error()})
		}
	}
	return nil
}

// verifyProjections reports projectors that do not all stand at head (low
// and agree as projectorStates returns them), then, table by table, where
// the stored tables, named by stored, differ from the rebuild, which the
// unqualified names reach.
func (s *Store) verifyProjections(ctx context.Context, tx querier, head, low int64, agree bool, stored map[string]string, r *VerifyReport) error {
	if !agree || low != head {
		r.add(Problem{Kind: "state", Table: "projection_state", Detail: fmt.Sprintf("projectors stand at %d (agree: %v), the log at %d", low, agree, head)})
	}
	for _, t := range projection.Tables {
		if err := s.diffTable(ctx, tx, stored[t.Name], t.Name, strings.Split(t.Key, ", "), r); err != nil {
			return err
		}
	}
	return nil
}

// storedStates is projectorStates without its writes: a projector without
// a row in table counts as standing at 0.
func storedStates(ctx context.Context, q querier, table string) (low int64, agree bool, err error) {
	rows, err := q.QueryContext(ctx, "SELECT projector, last_sequence FROM "+table)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var seqs []int64
	missing := slices.Clone(projection.Names)
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return 0, false, err
		}
		seqs = append(seqs, seq)
		missing = slices.DeleteFunc(missing, func(n string) bool { return n == name })
	}
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if len(missing) > 0 {
		seqs = append(seqs, 0)
	}
	return slices.Min(seqs), slices.Min(seqs) == slices.Max(seqs), nil
}

func (s *Store) verifyStreams(ctx context.Context, tx querier, r *VerifyReport) error {
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
		if lo != 1 || hi != n {
			r.add(Problem{Kind: "stream", Key: stream, Detail: fmt.Sprintf("%d events with versions %d..%d, want 1..%d", n, lo, hi, n)})
		}
	}
	return rows.Err()
}

// shadowName is the temporary table that holds Verify's copy of a stored
// projection table.
func shadowName(table string) string { return "verify_" + table }

// diffTable adds a problem for each row and column where stored, the
// stored table or a copy of it, and table, its rebuild, differ: first the rows of the rebuild that are
// missing or different, then the rows it does not have, each in key order
// (the key's columns joined by "/", compared as bytes). The database keeps
// back the rows that are the same; the others come one at a time. Values
// compare as text, the form the report shows them in.
func (s *Store) diffTable(ctx context.Context, tx querier, stored, table string, keys []string, r *VerifyReport) error {
	cols, err := columns(ctx, tx, table)
	if err != nil {
		return err
	}
	var differ, on []string
	for _, c := range cols {
		differ = append(differ, s.d.distinct("s."+c, "e."+c))
	}
	for _, k := range keys {
		on = append(on, "s."+k+" = e."+k)
	}
	// prefixed joins alias.name for each of names with sep.
	prefixed := func(alias string, names []string, sep string) string {
		return alias + "." + strings.Join(names, sep+alias+".")
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+prefixed("s", cols, ", ")+", "+prefixed("e", cols, ", ")+
		" FROM "+stored+" s FULL JOIN "+table+" e ON "+strings.Join(on, " AND ")+
		" WHERE "+strings.Join(differ, " OR ")+
		" ORDER BY e."+keys[0]+" IS NULL, COALESCE("+prefixed("e", keys, " || '/' || ")+", "+prefixed("s", keys, " || '/' || ")+")"+s.d.byteOrder())
	if err != nil {
		return err
	}
	defer rows.Close()
	n := len(cols)
	vals := make([]any, 2*n)
	ptrs := make([]any, 2*n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	keyAt := make([]int, len(keys))
	for i, k := range keys {
		keyAt[i] = slices.Index(cols, k)
	}
	key := func(row []any) string {
		k := make([]string, len(keyAt))
		for i, at := range keyAt {
			k[i] = text(row[at])
		}
		return strings.Join(k, "/")
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		stored, expected := vals[:n], vals[n:]
		switch {
		case stored[keyAt[0]] == nil:
			r.add(Problem{Kind: "projection", Table: table, Key: key(expected), Detail: "row missing"})
		case expected[keyAt[0]] == nil:
			r.add(Problem{Kind: "projection", Table: table, Key: key(stored), Detail: "row not in a rebuild"})
		default:
			for i, c := range cols {
				st, ex := text(stored[i]), text(expected[i])
				switch {
				case st != ex:
					r.add(Problem{Kind: "projection", Table: table, Key: key(expected), Column: c, Stored: st, Expected: ex})
				case (stored[i] == nil) != (expected[i] == nil):
					// The text NULL renders as SQL NULL does.
					r.add(Problem{Kind: "projection", Table: table, Key: key(expected), Column: c, Stored: st, Expected: ex,
						Detail: "one is SQL NULL, the other the text NULL"})
				}
			}
		}
	}
	return rows.Err()
}

// columns returns the columns of table in name order, without the
// surrogate key id of checkpoints.
func columns(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	cols = slices.DeleteFunc(cols, func(c string) bool { return c == "id" })
	slices.Sort(cols)
	return cols, nil
}

// text renders a column value for comparison and reports.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(v)
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	return fmt.Sprint(v)
}
