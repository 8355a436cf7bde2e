package persistence

import (
	"context"
	"fmt"

	"github.com/peonhq/peon/internal/projector"
)

// maxIntegrityFindings bounds what the engine's integrity check reports;
// SQLite's integrity_check stops there too.
const maxIntegrityFindings = 100

// storeTables are the tables of a store, which the integrity check of a
// PostgreSQL database looks at (on SQLite it checks the whole file).
func storeTables() []string {
	names := []string{"events", "projection_state", "atlas_schema_revisions"}
	for _, t := range projector.Tables {
		names = append(names, t.Name)
	}
	return names
}

// checkIntegrity runs the engine's own check of the pages and indexes of
// the database through q, and adds what it finds to r as problems of kind
// "integrity". A replay reads only the tables' own pages, and the
// comparison with a rebuild only the projection tables: an index that
// disagrees with its table is seen by this check alone.
func (s *Store) checkIntegrity(ctx context.Context, q querier, r *VerifyReport) error {
	name, note, found, err := s.d.IntegrityCheck(ctx, q, storeTables(), maxIntegrityFindings)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	r.Integrity, r.IntegrityNote = name, note
	for _, p := range found {
		r.add(Problem{Kind: ProblemIntegrity, Table: p.Table, Key: p.Key, Detail: p.Detail})
	}
	return nil
}

// Damaged reports whether the engine's integrity check found damage (a
// problem of kind "integrity"): then `rebuild` cannot repair the store.
func (r *VerifyReport) Damaged() bool {
	for _, p := range r.Problems {
		if p.Kind == ProblemIntegrity {
			return true
		}
	}
	return false
}
