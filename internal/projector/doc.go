// Package projector keeps peon's projection tables — projects, threads,
// turns, messages, checkpoints and settings — in step with the event log:
// the SQL of each projector and the Applier that runs it. Only
// persistence calls it: inline in an append's transaction, in CatchUp and
// Rebuild, and in Import. The tables are read back through package
// projection.
//
// # Applying events
//
// An Applier runs inside the transaction of the append that stored the
// events, so the log and the tables commit together. Projectors are
// deterministic and total: an event that refers to a row that does not
// exist changes nothing (its parent check is inside its statement), a
// second created event for an existing row changes nothing, and every
// touched row gets updated_at = the event's at and last_sequence = its
// sequence. A message.delta is part of a row of projection_message_chunks,
// never a rewrite of its message, so its cost does not grow with the
// text: the deltas of one message in one Apply are one chunk row, the
// chunk rows of an Apply one multi-row INSERT, and message.completed
// folds them into the message's text. Since a rebuild batches deltas its
// own way, Verify compares the chunks per message (Table.Compared).
//
// # Engines
//
// The statements are written once with ? placeholders. The projector
// knows no engine: its caller passes the bind func that rewrites them
// for its engine, and a querier that may hold statements back (a
// Deferrer) to send several in one round trip.
package projector
