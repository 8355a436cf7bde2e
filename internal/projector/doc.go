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
// sequence. A message.delta writes nothing: its event row in the log
// already holds its text, so its cost does not grow with the message.
// While a message streams, the view projection_messages_live and
// projection.Reader add its deltas from the log to its row, and
// message.completed folds them into the row's text, once, in one
// statement that reads them from the log's index of streams.
//
// # Engines
//
// The statements are written once with ? placeholders. The projector
// knows no engine: its caller passes the bind func that rewrites them
// for its engine, and a querier that may hold statements back (a
// Deferrer) to send several in one round trip.
package projector
