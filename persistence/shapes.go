package persistence

import (
	"context"
	"database/sql"
	"math/bits"
)

// Statement shapes. An append's INSERTs and head reads have a shape, the
// number of rows (events) or streams they carry; a statement of a shape
// not prepared before is parsed and planned again, which SQLite's parser
// made 14–16% of a 100-event append's CPU. So every shape is a power of
// two:
//
//   - On SQLite an INSERT of n events is written as full chunks of
//     maxShape (512) rows and then one INSERT per set bit of the rest,
//     largest first: 100 events are INSERTs of 64, 32 and 4 rows. A chunk
//     of k rows binds the same 12·k arguments a single INSERT would; only
//     the number of statements grows, by at most log2(maxShape) per
//     append.
//   - On PostgreSQL, whose driver takes arrays as parameters, there is one
//     INSERT of arrays for any number of events (see arrayInsert), one
//     per maxArrayBytes of them: twelve parameters instead of 12·n. It
//     has one shape, arrayRows, plain and notifying.
//   - A head read of n streams is padded up to the next power of two with
//     the last stream again (reading a stream's version twice changes
//     nothing); more than headStreams (64) streams take several reads. The
//     first read also reads the last sequence and the command, NULL when
//     the append has none (which finds nothing), so it has one shape with
//     and without a command.
//
// So the cache keeps at most shapeTexts texts: 10 INSERTs (1 … 512 rows),
// 7 first head reads and 7 further ones (1 … 64 streams), and the command
// look-up: 25 statements on SQLite; on PostgreSQL the two INSERTs of
// arrays instead of the ten: 17 (arrayShapeTexts; the multi-row INSERTs
// were 20 there, each also notifying, 35 in all).
// SQLite prepares each on every connection that runs it (8 at most for a
// file, 1 in memory). Measured with sqlite3_db_status (TestStatementMemory):
// an INSERT takes about 1.2 KB a row (the 512-row one 616 KB, all ten
// 1.27 MB), a head read about 2 KB a stream (the 64-stream one 128 KB,
// all fourteen 0.5 MB): all 25 about 1.8 MB per connection, at most
// 14 MB for a file whose 8 connections each ran every shape; the old
// scheme (shapes up to 8 and the 500-row INSERT) held about 0.75 MB per
// connection. On PostgreSQL pgx prepares every text it runs on each
// connection and keeps up to 512 of them, least recently used first out:
// with a bounded set of texts the append's statements are never evicted,
// and no batch size costs a round trip to prepare it once it has run on a
// connection. The server keeps each statement's query tree, and after
// five runs its generic plan, in the connection's backend: measured in
// pg_backend_memory_contexts (CachedPlanSource, CachedPlanQuery and
// CachedPlan, 2026-12-02), the twenty multi-row INSERTs took 7.0 MB a
// connection once each had run (225 MB for a pool of 32), the two INSERTs
// of arrays 97 KB.
const maxShape = 512

// headStreams is how many streams one head read looks up at most: a head
// read takes twice an INSERT's memory per row, and appends of more than
// 64 streams are rare.
const headStreams = 64

// insertSizes and headSizes are how many sizes the multi-row INSERTs (1,
// 2, 4 … maxShape) and the head reads (1, 2, 4 … headStreams) have.
const (
	insertSizes = 10
	headSizes   = 7
)

// shapeTexts is how many statement texts the cache keeps at most (see
// above) on a dialect without array parameters (SQLite, which does not
// notify): the INSERTs, first and further head reads, and the command
// look-up. arrayShapeTexts is that bound on a dialect with them
// (PostgreSQL): the INSERT of arrays plain and notifying instead of the
// multi-row INSERTs.
const (
	shapeTexts      = insertSizes + 2*headSizes + 1
	arrayShapeTexts = 2 + 2*headSizes + 1
)

// shapeMemory bounds the memory of every shape prepared on one SQLite
// connection, as TestStatementMemory measures it (see above).
const shapeMemory = 2 << 20

// maxPrepared is how many statements the cache prepares at most: the
// shapes, the projectors' statements and group commit's head reads (up to
// 2*cachedShapes streams) fit with room. A statement beyond it runs
// unprepared.
const maxPrepared = 128

// cachedShapes is half the number of streams up to which group commit's
// head read of a whole group is prepared (see Store.groupTx).
const cachedShapes = 8

// insertShapes returns the INSERT shapes of the dialect: arrayRows on one
// with array parameters, else the powers of two up to maxChunk.
func insertShapes(d dialect) []int {
	if d.Features().ArrayParameters {
		return []int{arrayRows}
	}
	var out []int
	for n := 1; n <= maxChunk(d); n *= 2 {
		out = append(out, n)
	}
	return out
}

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

// isShape reports whether n is one of the INSERT sizes of the dialect:
// arrayRows on a dialect with array parameters, else a power of two up
// to maxChunk.
func isShape(d dialect, n int) bool {
	if d.Features().ArrayParameters {
		return n == arrayRows
	}
	return n >= 1 && n <= maxChunk(d) && n&(n-1) == 0
}

// isHeadShape reports whether n is one of the head read sizes.
func isHeadShape(n int) bool {
	return n >= 1 && n <= headStreams && n&(n-1) == 0
}

// stagingInserts runs an import's INSERTs into stagingTable on its
// connection, each shape prepared there once (see Store.stage): an
// import of n events prepares at most log2(maxShape)+1 of them.
type stagingInserts struct {
	c     *stmtCache // counts the statements prepared
	d     dialect
	conn  *sql.Conn
	stmts map[int]*sql.Stmt
}

// exec inserts the n events of args.
func (si *stagingInserts) exec(ctx context.Context, n int, args ...any) error {
	st, ok := si.stmts[n]
	if !ok {
		var err error
		if st, err = si.conn.PrepareContext(ctx, stagingInsert(si.d, n)); err != nil {
			return err
		}
		si.c.prepares.Add(1)
		if si.stmts == nil {
			si.stmts = map[int]*sql.Stmt{}
		}
		si.stmts[n] = st
	}
	_, err := st.ExecContext(ctx, args...)
	return err
}

// close closes the statements prepared.
func (si *stagingInserts) close() {
	for _, st := range si.stmts {
		st.Close()
	}
}
