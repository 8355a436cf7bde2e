package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/projector"
)

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
		head, err := s.d.LastSequence(ctx, tx)
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
			if !s.d.Features().Private {
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

// projectionsAtHead reports whether every projector has its
// projection_state row and all stand at the head of the log, in one
// statement, so from one snapshot.
func (s *Store) projectionsAtHead(ctx context.Context) (bool, error) {
	in := strings.TrimSuffix(strings.Repeat("?, ", len(projector.Names)), ", ")
	args := make([]any, len(projector.Names))
	for i, n := range projector.Names {
		args[i] = n
	}
	var head, known, lo, hi int64
	err := s.db.QueryRowContext(ctx, s.d.Bind("SELECT COALESCE("+s.d.LastSequenceSQL()+", 0), "+
		"COALESCE(SUM(CASE WHEN projector IN ("+in+") THEN 1 ELSE 0 END), 0), "+
		"COALESCE(MIN(last_sequence), -1), COALESCE(MAX(last_sequence), -1) FROM projection_state"), args...).
		Scan(&head, &known, &lo, &hi)
	if err != nil {
		return false, fmt.Errorf("read projection state: %w", err)
	}
	return known == int64(len(projector.Names)) && lo == head && hi == head, nil
}

// errDisagree ends CatchUp's transaction when the projectors disagree, to
// rebuild with rebuildShadow.
var errDisagree = errors.New("projectors disagree")

// projectorStates makes sure every projector has its projection_state row
// (a new one starts at 0) and reports the lowest last_sequence and whether
// all agree.
func (s *Store) projectorStates(ctx context.Context, tx querier) (low int64, agree bool, err error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range projector.Names {
		if _, err := tx.ExecContext(ctx, s.d.Bind(
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
	ap := s.applier(tx)
	var (
		n     int64
		batch = make([]projector.Event, 0, pageSize)
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
		batch = append(batch, projector.Event{Sequence: rec.Sequence, Event: rec.Event})
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
