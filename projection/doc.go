// Package projection reads peon's read tables — projects, threads, turns,
// messages, checkpoints and settings — back as the package's own types.
//
// The store keeps the tables in step with the event log: it applies each
// append's events to them inside the append's transaction, so the log and
// the tables commit together, and Rebuild, CatchUp and Verify of
// persistence.Store rebuild, catch up and check them. docs/PROJECTIONS.md
// gives the rules each event follows.
//
// # Reading
//
// A Reader answers the UI's questions with typed queries:
//
//	r := projection.NewReader(store)
//	threads, err := r.Threads(ctx, &projection.ThreadFilter{ProjectID: "p1"})
//	detail, err := r.Thread(ctx, threads[0].ID) // turns in order, each with its messages
//
// Thread returns an error that wraps ErrNotFound for a thread that does
// not exist. Keep the Reader: it remembers the text so far of the
// streaming messages it read, so that reading a thread again while a
// reply streams into it reads only the deltas appended since (see
// docs/PROJECTIONS.md, "Reading a streaming message").
package projection
