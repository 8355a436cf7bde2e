package persistence

import "math/bits"

// Statement shapes. An append's INSERTs and head reads have a shape, the
// number of rows (events) or streams they carry; a statement of a shape
// not prepared before is parsed and planned again, which SQLite's parser
// made 14–16% of a 100-event append's CPU. So every shape is a power of
// two, up to a largest one (maxShape):
//
//   - An INSERT of n events is written as full chunks of maxShape rows and
//     then one INSERT per set bit of the rest, largest first: 100 events
//     are INSERTs of 64, 32 and 4 rows. A chunk of k rows binds the same
//     12·k arguments a single INSERT would; only the number of statements
//     grows, by at most log2(maxShape) per append.
//   - A head read of n streams is padded up to the next power of two with
//     the last stream again (reading a stream's version twice changes
//     nothing); more than maxShape streams take several reads.
//
// So at most log2(maxShape)+1 = 10 sizes exist per kind, and the cache
// keeps at most shapeTexts texts: 10 INSERTs, 10 notifying INSERTs
// (PostgreSQL), 30 head reads (with the last sequence and the command,
// with the last sequence alone, and plain) and the command look-up.
// SQLite prepares each on every connection that runs it (8 at most for a
// file, 1 in memory); docs/BENCHMARKS.md "Prepared shapes (issue 12)"
// gives their measured memory (all of them on one connection: about
// 2.6 MiB). On PostgreSQL pgx prepares every text it runs on each
// connection and keeps up to 512 of them (least recently used first
// out): a bounded set of texts means the append's statements are never
// evicted, and a batch of a new size costs no extra round trip to
// prepare it.
const maxShape = 512

// shapeSizes is how many sizes a kind of statement has: 1, 2, 4 … maxShape.
const shapeSizes = 10

// shapeTexts is how many statement texts the cache keeps at most (see
// above).
const shapeTexts = 2*shapeSizes + 3*shapeSizes + 1

// maxPrepared is how many statements the cache prepares at most: the
// shapes, the projectors' statements and group commit's head reads (up to
// 2*cachedShapes streams) fit with room. A statement beyond it runs
// unprepared.
const maxPrepared = 128

// cachedShapes is half the number of streams up to which group commit's
// head read of a whole group is prepared (see Store.groupTx).
const cachedShapes = 8

// maxChunk is the largest shape the dialect allows: maxShape, or the
// largest power of two within its argument limit.
func maxChunk(d dialect) int {
	return min(maxShape, 1<<(bits.Len(uint(d.MaxArgs()/eventArgs))-1))
}

// chunkSizes returns the shapes a statement of n rows is split into (see
// above): full chunks of max rows, then the rest's powers of two, largest
// first. max is a power of two.
func chunkSizes(n, max int) []int {
	sizes := make([]int, 0, n/max+bits.OnesCount(uint(n%max)))
	for range n / max {
		sizes = append(sizes, max)
	}
	for rest := n % max; rest > 0; {
		k := 1 << (bits.Len(uint(rest)) - 1)
		sizes = append(sizes, k)
		rest -= k
	}
	return sizes
}

// padded is n rounded up to a power of two (n >= 1).
func padded(n int) int {
	return 1 << bits.Len(uint(n-1))
}

// isShape reports whether n is one of the sizes of the dialect.
func isShape(d dialect, n int) bool {
	return n >= 1 && n <= maxChunk(d) && n&(n-1) == 0
}
