// Package persistence is peon's event store: an append-only log of
// orchestration events with projection tables kept in step with it, on
// embedded SQLite (modernc.org/sqlite, no cgo) or PostgreSQL.
//
// # Opening
//
//	store, err := persistence.OpenMemory(ctx)        // private in-memory SQLite, for tests
//	store, err := persistence.OpenDir(ctx, dataDir)  // dataDir/peon.db (dir 0700, file 0600)
//	store, err := persistence.Open(ctx, "postgres://…")
//	defer store.Close()
//
// Opening applies pending migrations from the embedded Atlas directory,
// each file in its own transaction and recorded in atlas_schema_revisions
// exactly as the atlas CLI records it. It refuses, changing nothing, a
// directory whose atlas.sum does not match and a database written by a
// newer build (ErrMigration). Then it catches the projections up.
//
// # Appending and reading
//
//	recs, err := store.Append(ctx, &persistence.AppendOpts{
//		ExpectedVersions: map[string]int64{"thread:t1": persistence.NoStream},
//		CommandID:        "cmd-42",
//	}, orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now})
//
//	for rec, err := range store.ReplayFrom(ctx, lastSeen+1) { … }
//	for rec, err := range store.Subscribe(ctx, lastSeen) { … } // then live, until ctx ends
//
// # Guarantees
//
//   - Atomic: the events of one Append and their projection updates commit
//     together or not at all; their sequences are contiguous.
//   - Ordered: sequences grow in commit order, so a reader that resumes
//     after the last sequence it saw never misses a committed event, on
//     SQLite and PostgreSQL, under any number of writers (see
//     docs/ORDERING.md).
//   - Concurrency: a wrong expected version fails with a
//     *VersionConflictError (errors.Is ErrVersionConflict) naming the
//     stream, the expected and the actual version; nothing is written.
//   - Idempotent: an Append whose CommandID was stored before writes
//     nothing and returns the first Append's records, also after a restart.
//   - An error means nothing was written: when the answer to an Append's
//     COMMIT is lost (the connection broke, or its time ran out, with the
//     COMMIT in flight), the store looks the batch's first event up on
//     another connection, within 5 s of its own, and returns the records
//     if they committed. Only when it cannot find out does it return an
//     *UnknownOutcomeError (errors.Is ErrUnknownOutcome); check for that
//     first. An Append whose context ends fails with an error that matches
//     the context's (context.Canceled, context.DeadlineExceeded).
//   - Deadlines (PostgreSQL): an Append whose deadline leaves less time
//     than the fastest recent append took is not begun, and fails with
//     context.DeadlineExceeded when the deadline ends. One store's appends
//     wait for their turn in Go, with their context and no connection;
//     once begun, a context that ends between round trips makes the append
//     roll back and keep its connection, and a round trip in flight gets
//     250 ms more, so callers that time out do not starve the others
//     (docs/RELIABILITY.md).
//   - Streaming: replays and reads hold one page of rows at a time and no
//     connection while the loop body runs, and stop when ctx ends.
//   - Honest on bad data: an undecodable stored row is yielded with a
//     *DecodeError naming its sequence and type, and the replay goes on.
//
// # Moving a store
//
// Export writes the log as JSON Lines, one event per line with its
// sequence, ids and metadata; Import reads that format into an empty store
// in one transaction (a malformed line, named by its number, writes
// nothing) and catches the projections up. Migrations reports which
// embedded migrations a database has applied, without migrating it.
//
// # Projections
//
// Rebuild recomputes the projection tables from the log in temporary
// tables and swaps them in in one short write transaction, so appends go
// on meanwhile; Verify checks the log's integrity and compares the tables
// with a rebuild it builds the same way, without the write lock; package
// projection reads them.
package persistence
