package persistence

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGapSetMissing(t *testing.T) {
	t.Parallel()
	g := &gapSet{}
	g.add(
		gap{Stream: "a", First: 10, Last: 14, FirstVersion: 3, LastVersion: 6, Events: 3},
		gap{Stream: "b", First: 12, Last: 20, FirstVersion: 1, LastVersion: 4, Events: 2},
		gap{Stream: "a", First: 30, Last: 31, FirstVersion: 9, LastVersion: 10, Events: 1},
	)
	for _, tt := range []struct {
		name             string
		prev, next       int64
		wantN, wantFirst int64
	}{
		{"NoHole", 5, 6, 0, 0},
		{"InsideOneRange", 10, 15, 0, 0},
		{"AcrossMergedRanges", 11, 21, 0, 0},
		{"BeforeARange", 7, 12, 3, 8},
		{"BetweenRanges", 19, 32, 10, 21},
		{"AfterEveryRange", 31, 35, 3, 32},
		{"TheFirstOfARangeIsNotRemoved", 9, 11, 1, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, first := g.missing(tt.prev, tt.next)
			require.Equal(t, tt.wantN, n, "missing count")
			require.Equal(t, tt.wantFirst, first, "first missing")
		})
	}
	n, first := g.missingVersions("a", 2, 11)
	require.Equal(t, []int64{4, 3}, []int64{n, first}, "versions 3 (the folded event), 7, 8 and 9 of a are not declared")
	n, _ = g.missingVersions("b", 1, 5)
	require.Zero(t, n)
	n, _ = g.missingVersions("c", 0, 2)
	require.EqualValues(t, 1, n, "a stream without records declares nothing")
	require.EqualValues(t, 6, g.removedFrom(""))
	require.EqualValues(t, 4, g.removedFrom("a"))
	var none *gapSet
	n, first = none.missing(3, 6)
	require.Equal(t, []int64{2, 4}, []int64{n, first})
}
