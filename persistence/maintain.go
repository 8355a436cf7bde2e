package persistence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/engine"
)

// DefaultMaintainEvery is how often a store opened with Options.Retention
// applies it when Options.MaintainEvery is zero.
const DefaultMaintainEvery = time.Hour

// MaintainReport is what one run of a retention policy
// (MaintainWithReport) removed: the reports of its prune and of its
// compaction, and their sums.
type MaintainReport struct {
	// Prune is the report of the prune (nil when the policy prunes
	// nothing: PruneDeletedAfter and PruneArchivedAfter both zero).
	Prune *PruneReport
	// Compact is the report of the compaction.
	Compact *CompactReport
	// Events are the events removed from the log, Bytes their payload
	// bytes, by both.
	Events, Bytes int64
	// Reclaimed is the bytes of database space given back, once, after
	// both: the reports of the prune and the compaction leave it to
	// Maintain and say 0 (BytesReclaimed, Reclaimed).
	Reclaimed int64
	// Elapsed is how long the run took.
	Elapsed time.Duration
}

// Maintain applies a retention policy once, at the current time: it
// prunes the streams of threads and projects deleted more than
// r.PruneDeletedAfter ago and of threads archived more than
// r.PruneArchivedAfter ago (each off when zero), then compacts the
// messages completed more than r.CompactAfter ago (24 h when zero), and
// then gives back the space of both at once, and any free pages it found
// (see Prune and Compact for what each keeps true).
// Pruning goes first so that compaction does not fold what is about to
// go: the prune removes what Stats with StatsOpts{Retention: r} counts as
// Prunable, the compaction what it counts as Compaction outside the
// pruned streams (when no append comes in between). It logs
// "peon: maintenance done" with the counts; MaintainWithReport returns
// them too.
//
// Applications that schedule their own maintenance call it; Options.
// Retention makes the store call it in the background instead.
func (s *Store) Maintain(ctx context.Context, r Retention) error {
	_, err := s.MaintainWithReport(ctx, r)
	return err
}

// MaintainWithReport is Maintain, returning what the run removed and gave
// back.
func (s *Store) MaintainWithReport(ctx context.Context, r Retention) (*MaintainReport, error) {
	if err := s.writable(); err != nil {
		return nil, fmt.Errorf("maintain: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("maintain: %w", err)
	}
	start := time.Now()
	ctx, end := s.tel.start(ctx, "peon.maintain")
	var err error
	defer func() { end(err) }()
	_, deleted, archived := r.horizons(start)
	rep := &MaintainReport{}
	sd, _ := s.d.(statsDialect)
	var before engine.DatabaseStats // its size, and SQLite's free pages
	if sd != nil {
		if before, err = sd.DatabaseStats(ctx, s.db, s.target.DSN); err != nil {
			return nil, s.maintainFailed(ctx, "read the database's size", err)
		}
	}
	if deleted != nil || archived != nil {
		opts := &PruneOpts{leaveSpace: true}
		if deleted != nil {
			opts.DeletedBefore = *deleted
		}
		if archived != nil {
			opts.ArchivedBefore = *archived
		}
		var p *PruneReport
		if p, err = s.Prune(ctx, opts); err != nil {
			return nil, s.maintainFailed(ctx, "prune", err)
		}
		rep.Prune = p
		rep.Events += p.Events
		rep.Bytes += p.Bytes
	}
	pruned := int64(0)
	if rep.Prune != nil {
		pruned = rep.Prune.Streams
	}
	var c *CompactReport
	// Compact's zero OlderThan is DefaultCompactAfter, as Retention's is.
	if c, err = s.Compact(ctx, &CompactOpts{OlderThan: r.CompactAfter, leaveSpace: true}); err != nil {
		if (pruned > 0 || (c != nil && c.Events > 0)) && ctx.Err() == nil {
			// What the prune (or the compaction's first batches) removed
			// still gives its space back, as the prune did when it
			// reclaimed by itself; the compaction's error is the one
			// returned. A run cut short leaves free pages, which the
			// next run gives back (see below).
			if _, rerr := s.reclaimSpace(ctx, sd, before.Bytes, true, false); rerr != nil {
				s.maintainFailed(ctx, "reclaim", rerr)
			}
		}
		return nil, s.maintainFailed(ctx, "compact", err)
	}
	rep.Compact = c
	rep.Events += c.Events
	rep.Bytes += c.Bytes
	// The space of both, given back once; also the free pages found at
	// the start (a run cut short, or rows deleted beside it).
	removed := pruned > 0 || c.Events > 0 || before.FreePages > 0
	if rep.Reclaimed, err = s.reclaimSpace(ctx, sd, before.Bytes, removed, false); err != nil {
		return nil, s.maintainFailed(ctx, "reclaim", err)
	}
	rep.Elapsed = time.Since(start)
	s.tel.log.Info("peon: maintenance done",
		"streams_pruned", pruned, "messages_compacted", c.Messages,
		"events_removed", rep.Events, "bytes_removed", rep.Bytes,
		"bytes_reclaimed", rep.Reclaimed, "duration", rep.Elapsed)
	return rep, nil
}

// maintainFailed logs a failed step, unless ctx ended (a run cut short by
// its caller or by Close), and wraps err.
func (s *Store) maintainFailed(ctx context.Context, step string, err error) error {
	if ctx.Err() == nil {
		s.tel.log.Warn("peon: maintenance failed", "step", step, "err", err)
	}
	return fmt.Errorf("maintain: %s: %w", step, err)
}

// checkMaintenance refuses Options.Retention where it cannot run.
func checkMaintenance(o *Options) error {
	if o.Retention == nil {
		if o.MaintainEvery != 0 {
			return errors.New("options: MaintainEvery without Retention")
		}
		return nil
	}
	if o.ReadOnly {
		return errors.New("options: Retention on a read-only store (maintenance writes)")
	}
	if o.MaintainEvery < 0 {
		return fmt.Errorf("options: MaintainEvery is %s; want 0 or more", o.MaintainEvery)
	}
	return o.Retention.check()
}

// maintainInBackground applies Options.Retention now and then every
// Options.MaintainEvery until the store closes. A failed run is logged
// ("peon: maintenance failed", from Maintain) and the next one tries
// again; a run cut short by Close is not a failure.
func (s *Store) maintainInBackground(bg context.Context) {
	r := *s.opts.Retention
	every := cmp.Or(s.opts.MaintainEvery, DefaultMaintainEvery)
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			_ = s.Maintain(bg, r) // logs its outcome; bg ends at Close
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
		}
	})
}
