package persistence

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChunkSizes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		want []int
	}{
		{0, []int{}},
		{1, []int{1}},
		{9, []int{8, 1}},
		{37, []int{32, 4, 1}},
		{100, []int{64, 32, 4}},
		{300, []int{256, 32, 8, 4}},
		{512, []int{512}},
		{1203, []int{512, 512, 128, 32, 16, 2, 1}},
	} {
		got := chunkSizes(c.n, maxShape)
		require.Equal(t, c.want, got, "n=%d", c.n)
		sum := 0
		for _, k := range got {
			sum += k
		}
		require.Equal(t, c.n, sum)
	}
}

func TestPadded(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{1: 1, 2: 2, 3: 4, 8: 8, 9: 16, 37: 64, 500: 512, 512: 512} {
		require.Equal(t, want, padded(n), "n=%d", n)
	}
}

// TestShapeSizes checks that the counts of sizes match the largest
// shapes: the cache's bound (shapeTexts) is built from them.
func TestShapeSizes(t *testing.T) {
	if got := bits.Len(uint(maxShape)); got != insertSizes {
		t.Errorf("INSERTs of 1 to %d rows have %d sizes; insertSizes is %d", maxShape, got, insertSizes)
	}
	if got := bits.Len(uint(headStreams)); got != headSizes {
		t.Errorf("head reads of 1 to %d streams have %d sizes; headSizes is %d", headStreams, got, headSizes)
	}
}
