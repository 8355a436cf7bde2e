package persistence

import (
	"context"
	"errors"
	"fmt"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/projector"
)

// Progress is how Rebuild, Export and Import report how far they are:
// done events of total. Total is 0 where it is not known (Import, which
// reads its input as it goes).
type Progress func(done, total int64)

// RebuildOpts are the optional inputs of Rebuild. A nil *RebuildOpts is the
// same as the zero value.
type RebuildOpts struct {
	// Progress, when set, is called after each page of events with the
	// events done so far and the total; the last call has done == total.
	Progress Progress
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
	// hold and that no compaction recorded as removed (rows removed by
	// hand leave such gaps); FirstMissing is the lowest of them, 0 when
	// none.
	Missing      int64
	FirstMissing int64

	known *gapSet // the recorded gaps, which are not missing
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

// gap records the sequences after prev and before next as missing, but
// for those of a recorded gap.
func (r *RebuildResult) gap(prev, next int64) {
	if r == nil || next <= prev+1 {
		return
	}
	n, first := r.known.missing(prev, next)
	if n == 0 {
		return
	}
	if r.Missing == 0 {
		r.FirstMissing = first
	}
	r.Missing += n
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
	if s.d.Features().Private {
		err = s.writeTx(ctx, func(tx *ent.Tx) error {
			head, err := s.d.LastSequence(ctx, tx)
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
		res.known = nil
		*opts.Result = res
	}
	return nil
}

// rebuildShadow rebuilds the projections in temporary tables and swaps
// them in, and returns what it applied and skipped. Only the swap holds the
// write lock. A compaction that commits while the tables are built aside
// changes the log below the head: the swap sees it in the recorded gaps,
// and the rebuild starts again, a few times at most.
func (s *Store) rebuildShadow(ctx context.Context, progress func(done, total int64)) (RebuildResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.rebuildShadowOnce(ctx, progress)
		if !errors.Is(err, errGapsChanged) || attempt == maxAsideAttempts {
			return res, err
		}
		s.tel.log.Info("peon: the log was compacted during a rebuild; rebuilding again", "attempt", attempt)
	}
}

// maxAsideAttempts is how many times Rebuild and Verify build aside when
// compactions commit meanwhile.
const maxAsideAttempts = 5

// errGapsChanged says that a compaction committed while tables were built
// aside from the log: what was built may mix the log before and after.
var errGapsChanged = errors.New("the log was compacted meanwhile; run again")

func (s *Store) rebuildShadowOnce(ctx context.Context, progress func(done, total int64)) (RebuildResult, error) {
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
		tx, release, err := beginLocked(ctx, s, false, conn.BeginTx, nil)
		if err != nil {
			return err
		}
		defer release()
		last, err := s.d.LastSequence(ctx, tx)
		if err != nil {
			return err
		}
		if now, err := loadGaps(ctx, tx); err != nil {
			return err
		} else if !now.same(res.known) {
			return errGapsChanged
		}
		if last > head {
			n, err := s.applyFrom(ctx, tx, head+1, last, 0, nil, &res)
			res.Events += n
			if err != nil {
				return err
			}
			if progress != nil {
				progress(res.Events, last-res.known.removedFrom(""))
			}
		}
		if err := s.swapIn(ctx, tx, stored, last); err != nil {
			return err
		}
		return tx.Commit()
	}()
	return res, err
}

// rebuildIn empties the projection tables and applies the log up to head.
func (s *Store) rebuildIn(ctx context.Context, tx querier, head int64, progress func(done, total int64)) (RebuildResult, error) {
	var res RebuildResult
	var err error
	if res.known, err = loadGaps(ctx, tx); err != nil {
		return res, err
	}
	for _, t := range projector.Tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.Name); err != nil {
			return res, err
		}
	}
	total := head - res.known.removedFrom("") // less the events compacted away
	if progress != nil {
		progress(0, total)
	}
	res.Events, err = s.applyFrom(ctx, tx, 1, head, total, progress, &res)
	return res, err
}
