// Package projection keeps peon's read tables — projects, threads, turns,
// messages, checkpoints and settings — in step with the event log, and
// reads them back as the package's own types.
//
// # Applying events
//
// An Applier runs inside the transaction of the append that stored the
// events (persistence.Store calls it), so the log and the tables commit
// together. Projectors are deterministic and total: an event that refers to
// a row that does not exist changes nothing, a second created event for an
// existing row changes nothing, and every touched row gets updated_at = the
// event's at and last_sequence = its sequence. A run of message.delta
// events to one message becomes one UPDATE that appends their text, so a
// streamed reply never rewrites its thread.
//
// # Reading
//
// A Reader answers the UI's questions with typed queries over ent:
//
//	r := projection.NewReader(store.Client())
//	threads, err := r.Threads(ctx, &projection.ThreadFilter{ProjectID: "p1"})
//	detail, err := r.Thread(ctx, threads[0].ID) // turns in order, each with its messages
//
// Rebuilding the tables from the log, catching them up and verifying them
// are methods of persistence.Store: Rebuild, CatchUp and Verify.
package projection
