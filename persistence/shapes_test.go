package persistence

import (
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
