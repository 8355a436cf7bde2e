package persistence

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/peonhq/peon/internal/projector"
)

// stagingTable is the temporary table an Import stages its events in.
const stagingTable = "peon_import"

// importStaged is Import without the catch-up after it. It runs in two
// phases on one connection of its own:
//
//  1. Without a lock: it reads the store's head, reads and checks r and
//     writes the events into stagingTable, a chunk per transaction. Into
//     an empty store (and not in memory) it also applies them to
//     temporary tables of the projections, which hide the stored ones on
//     this connection, as buildAside does.
//  2. Under the write lock: it checks that the store's head is still the
//     one phase 1 continued, copies the staged events into events and
//     either swaps the projections built aside in or, into a store that
//     held events, applies the imported events to them, and commits.
//
// On a file or a server the connection is discarded afterwards, which
// drops its temporary tables; a private in-memory store's one connection
// holds the database, so there phase 1 builds no projections and the
// staging table is dropped.
func (s *Store) importStaged(ctx context.Context, r io.Reader, opts *ImportOpts) (res ImportResult, err error) {
	d := s.d
	// A private in-memory store has one connection: an Append that holds
	// writeMu waits for it, so the import takes writeMu before the
	// connection, for all of its run (no other process can wait).
	if s.d.Features().Private && s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	if s.d.Features().Private {
		defer func() {
			conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS temp."+stagingTable)
			conn.Close()
		}()
		if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp."+stagingTable); err != nil {
			return res, fmt.Errorf("import: %w", err)
		}
	} else {
		defer discard(conn)
	}

	// Phase 1: what the import continues, then the input, staged.
	head, err := d.LastSequence(ctx, conn)
	if err != nil {
		return res, fmt.Errorf("import: read last sequence: %w", err)
	}
	held, err := countEvents(ctx, conn)
	if err != nil {
		return res, err
	}
	if held > 0 && !opts.Force {
		return res, fmt.Errorf("import: %w: it holds %d events", ErrNotEmpty, held)
	}
	if err := d.CreateStaging(ctx, conn, stagingTable); err != nil {
		return res, fmt.Errorf("import: create the staging table: %w", err)
	}
	var stored map[string]string // the stored projection tables, when built aside
	if held == 0 && !s.opts.NoProjections && !s.d.Features().Private {
		names := []string{"projection_state"}
		for _, t := range projector.Tables {
			names = append(names, t.Name)
		}
		if stored, err = d.ShadowTables(ctx, conn, names); err != nil {
			return res, fmt.Errorf("import: create the projection tables aside: %w", err)
		}
	}
	gaps := &importGaps{}
	res, tombs, err := s.stage(ctx, conn, r, opts, head, held > 0, stored != nil, gaps)
	if err != nil {
		return ImportResult{}, err
	}
	if res.Events == 0 && len(tombs) == 0 {
		return res, nil
	}
	// The projectors stand at the last sequence, which a pruned stream's
	// may be.
	last := res.Last
	for _, t := range tombs {
		last = max(last, t.LastSequence)
	}

	// Phase 2: under the write lock, one transaction.
	// A private in-memory store holds writeMu already (see above).
	tx, release, err := beginLocked(ctx, s, s.d.Features().Private, conn.BeginTx, func(what string, err error) error {
		return fmt.Errorf("import: %s: %w", what, err)
	})
	if err != nil {
		return ImportResult{}, err
	}
	defer release()
	now, err := d.LastSequence(ctx, tx)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import: read last sequence: %w", err)
	}
	if now != head {
		if !opts.Force {
			return ImportResult{}, fmt.Errorf("import: %w: another writer appended events %d to %d while the import was read", ErrNotEmpty, head+1, now)
		}
		return ImportResult{}, fmt.Errorf("import: %w: another writer appended events %d to %d while it was read, so its sequences, from %d, no longer follow the store's; run it again", ErrStoreChanged, head+1, now, res.First)
	}
	for _, t := range tombs {
		if err := s.insertTombstone(ctx, tx, t); err != nil {
			return ImportResult{}, fmt.Errorf("import: insert the tombstone of %s: %w", t.Stream, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO events ("+eventColumns+") SELECT "+eventColumns+" FROM "+stagingTable+" ORDER BY sequence"); err != nil {
		return ImportResult{}, fmt.Errorf("import: insert events %d to %d: %w", res.First, res.Last, err)
	}
	if err := s.storeGaps(ctx, tx, gaps); err != nil {
		return ImportResult{}, fmt.Errorf("import: store the recorded gaps: %w", err)
	}
	switch {
	case stored != nil:
		if err := s.swapIn(ctx, tx, stored, last); err != nil {
			return ImportResult{}, fmt.Errorf("import: swap the projections in: %w", err)
		}
		res.Projected = res.Events
	case !s.opts.NoProjections:
		// When the projections stand at the head, they follow the import
		// in its transaction, as they follow an append; otherwise the
		// catch-up after the import brings them up.
		low, agree, err := s.projectorStates(ctx, tx)
		if err != nil {
			return ImportResult{}, fmt.Errorf("import: read projection state: %w", err)
		}
		if agree && low == head {
			if res.Projected, err = s.applyFrom(ctx, tx, res.First, res.Last, 0, nil, nil); err != nil {
				return ImportResult{}, fmt.Errorf("import: project events %d to %d: %w", res.First, res.Last, err)
			}
		}
	}
	if err := d.Notify(ctx, tx, res.Last); err != nil {
		return ImportResult{}, fmt.Errorf("import: notify: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return ImportResult{}, fmt.Errorf("import: commit: %w", err)
	}
	return res, nil
}

// countEvents counts the stored events.
func countEvents(ctx context.Context, q querier) (int64, error) {
	n, err := queryInt64(ctx, q, "SELECT COUNT(*) FROM events")
	if err != nil {
		return 0, fmt.Errorf("import: count events: %w", err)
	}
	return n, nil
}

// stage reads and checks r line by line, the gap records into gaps, and
// writes the events into
// stagingTable on conn, a chunk per transaction, which writes temporary
// tables only; with project, it also applies each chunk to the projection
// tables aside. held tells whether the store holds events, whose streams'
// versions the import continues.
func (s *Store) stage(ctx context.Context, conn *sql.Conn, r io.Reader, opts *ImportOpts, head int64, held, project bool, gaps *importGaps) (ImportResult, []Tombstone, error) {
	var res ImportResult
	v := importValidator{last: head, versions: make(map[string]int64), gaps: &gaps.set}
	if held {
		v.version = func(stream string) (int64, error) {
			return queryInt64(ctx, conn, s.stmts.head(s.d, 1, false), stream, stream)
		}
	}
	var ap *projector.Applier
	if project {
		ap = s.applier(conn)
		ap.Log = stagingTable // a completion folds the staged deltas
	}
	ins := &stagingInserts{c: &s.stmts, d: s.d, conn: conn}
	defer ins.close()
	sc := bufio.NewScanner(contextReader(ctx, r))
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	chunk := make([]Recorded, 0, insertRows)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := s.stageChunk(ctx, conn, ins, ap, chunk); err != nil {
			return fmt.Errorf("import: stage events %d to %d: %w", chunk[0].Sequence, chunk[len(chunk)-1].Sequence, err)
		}
		clear(chunk)
		chunk = chunk[:0]
		if opts.Progress != nil {
			opts.Progress(res.Events, 0)
		}
		return ctx.Err()
	}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if ok, err := gaps.gapLine(b); ok {
			if err == nil && res.Events > 0 {
				err = errors.New("a gap record after the events; compaction and compacted_command lines come first")
			}
			if err != nil {
				return res, nil, fmt.Errorf("import: %w", &ImportError{Line: line, Err: err})
			}
			continue
		}
		if isTombstoneLine(b) {
			if err := v.tombstone(b); err != nil {
				return res, nil, fmt.Errorf("import: %w", &ImportError{Line: line, Err: err})
			}
			continue
		}
		rec, err := v.line(b)
		if err != nil {
			return res, nil, fmt.Errorf("import: %w", &ImportError{Line: line, Err: err})
		}
		chunk = append(chunk, rec)
		res.Events++
		if res.First == 0 {
			res.First = rec.Sequence
		}
		res.Last = rec.Sequence
		if len(chunk) == cap(chunk) {
			if err := flush(); err != nil {
				return res, nil, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			return res, nil, fmt.Errorf("import: %w", err)
		}
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("longer than %d bytes", maxImportLine)
		}
		return res, nil, fmt.Errorf("import: %w", &ImportError{Line: line + 1, Err: err})
	}
	if err := v.finish(); err != nil {
		return res, nil, fmt.Errorf("import: %w", &ImportError{Line: line, Err: err})
	}
	return res, v.tombs, flush()
}

// stageChunk writes recs into stagingTable, and applies them to the
// projection tables aside when ap is set, in one transaction that writes
// temporary tables only (SQLite: DEFERRED, so no write lock).
func (s *Store) stageChunk(ctx context.Context, conn *sql.Conn, ins *stagingInserts, ap *projector.Applier, recs []Recorded) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	for _, c := range s.insertChunks(recs) {
		if err := ins.exec(ctx, c.rows, c.args...); err != nil {
			return err
		}
	}
	if ap != nil {
		evs := make([]projector.Event, len(recs))
		for i := range recs {
			evs[i] = projector.Event{Sequence: recs[i].Sequence, Event: recs[i].Event}
		}
		if err := ap.Apply(ctx, evs); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// stagingInsert is the INSERT of n events into stagingTable (see
// insertInto), with the arguments of insertChunks.
func stagingInsert(d dialect, n int) string {
	return d.Bind(insertInto(stagingTable, n))
}

// importFailure rewords the error of an import that wrote nothing where
// the driver's own words would not tell a user what happened: a full disk,
// and the end of ctx (which SQLite reports as "interrupted").
func (s *Store) importFailure(ctx context.Context, err error) error {
	var ie *ImportError
	switch {
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		// The end of ctx comes first: it also cuts the input short, and
		// the half line it leaves is not the input's fault.
		return fmt.Errorf("import: %w: nothing was imported (%v)", ctx.Err(), err)
	case errors.As(err, &ie), errors.Is(err, ErrNotEmpty), errors.Is(err, ErrStoreChanged):
		return err
	case s.isDiskFull(err):
		return fmt.Errorf("%w: disk full: nothing was imported; free space where the database (and, on SQLite, its temporary files) lives and run the import again", err)
	}
	return err
}

// isDiskFull reports whether err says the disk (or the database's size
// limit) is full: the engine's own error (SQLITE_FULL, PostgreSQL's
// disk_full), or ENOSPC.
func (s *Store) isDiskFull(err error) bool {
	return s.d.DiskFull(err) || errors.Is(err, syscall.ENOSPC)
}

// contextReader returns r, read in a goroutine of its own, so that a Read
// returns ctx.Err() when ctx ends even while r's Read blocks (a stalled
// pipe): the import can then end. That goroutine ends when r's Read
// returns.
func contextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	chunks  chan readChunk
	cur     []byte
	err     error
	started bool
}

type readChunk struct {
	b   []byte
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(c.cur) == 0 && c.err == nil {
		if !c.started {
			c.started = true
			c.chunks = make(chan readChunk)
			go c.pump()
		}
		select {
		case ch := <-c.chunks:
			c.cur, c.err = ch.b, ch.err
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	if len(c.cur) == 0 && c.err != nil {
		return n, c.err
	}
	return n, nil
}

// pump reads r into fresh buffers until it fails or ctx ends.
func (c *ctxReader) pump() {
	for {
		b := make([]byte, 64<<10)
		n, err := c.r.Read(b)
		select {
		case c.chunks <- readChunk{b[:n], err}:
		case <-c.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
