package persistence

import (
	"cmp"
	"fmt"
	"time"
)

// DefaultCompactAfter is the age of a completed message beyond which
// compaction folds its deltas when a Retention leaves CompactAfter zero.
const DefaultCompactAfter = 24 * time.Hour

// Retention is a policy for a store's growth: how old the history is that
// compaction folds and that retention prunes. Each age counts back from
// the current time, and compares with the at of the event it names.
// Stats counts what the policy would remove (see StatsOpts).
type Retention struct {
	// CompactAfter is how long ago a message must have been completed
	// (the at of its message.completed) for compaction to fold its
	// message.delta events into one. Zero means DefaultCompactAfter (24 h).
	CompactAfter time.Duration
	// PruneDeletedAfter is how long ago a thread or project must have
	// been deleted (the at of its first thread.deleted or project.deleted)
	// for retention to prune its stream. Zero means never.
	PruneDeletedAfter time.Duration
	// PruneArchivedAfter is how long ago a thread must have been archived
	// (the at of its first thread.archived) for retention to prune its
	// stream, deleted or not. Zero means never.
	PruneArchivedAfter time.Duration
}

// check refuses negative durations.
func (r Retention) check() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"CompactAfter", r.CompactAfter}, {"PruneDeletedAfter", r.PruneDeletedAfter}, {"PruneArchivedAfter", r.PruneArchivedAfter}} {
		if f.d < 0 {
			return fmt.Errorf("retention: %s is %s; want 0 or more", f.name, f.d)
		}
	}
	return nil
}

// horizons returns, at now, the times before which the policy compacts
// and prunes: compacting always, the others nil when off.
func (r Retention) horizons(now time.Time) (compact time.Time, deleted, archived *time.Time) {
	compact = now.Add(-cmp.Or(r.CompactAfter, DefaultCompactAfter))
	if r.PruneDeletedAfter > 0 {
		t := now.Add(-r.PruneDeletedAfter)
		deleted = &t
	}
	if r.PruneArchivedAfter > 0 {
		t := now.Add(-r.PruneArchivedAfter)
		archived = &t
	}
	return compact, deleted, archived
}
