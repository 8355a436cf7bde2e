package persistence_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// rebuild rebuilds the projections of s from its log.
func rebuild(ctx context.Context, s *persistence.Store) error {
	err := s.Rebuild(ctx, nil)
	return err
}

// verifyProjections checks with Verify that the log has no holes, every
// row decodes and the projections equal a rebuild from the log.
func verifyProjections(t *testing.T, ctx context.Context, s *persistence.Store) {
	t.Helper()
	r, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "verify found problems: %+v", r.Problems)
}

// verifyReportsDecodeErrors checks that Verify reports the undecodable
// rows at seqs, and nothing else.
func verifyReportsDecodeErrors(t *testing.T, ctx context.Context, s *persistence.Store, seqs []int64) {
	t.Helper()
	r, err := s.Verify(ctx)
	require.NoError(t, err)
	var got []string
	for _, p := range r.Problems {
		require.Equal(t, persistence.ProblemDecode, p.Kind, "%+v", p)
		got = append(got, p.Key)
	}
	var want []string
	for _, q := range seqs {
		want = append(want, fmt.Sprint(q))
	}
	require.Equal(t, want, got)
}
