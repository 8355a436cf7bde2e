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
// newer build (ErrMigration), and a database that holds other tables and
// no peon migrations (a *NotStoreError, ErrNotStore, naming its tables;
// Options.Adopt adds peon's tables beside them). Then it catches the
// projections up. It decides both with a read: a store that has every
// migration, with its projections at the head, opens without taking the
// write lock, so it does not wait for another writer.
//
// Options.ReadOnly opens a store without changing its database at all (no
// file created, no migration, no journal mode switched, no catch-up; the
// connections refuse writes), and refuses one that is not a store
// (ErrNotStore) or lacks migrations (ErrMigrationPending); its writes
// return ErrReadOnly. peon-store's read-only commands open stores so.
//
// # Options
//
// OpenWith takes an *Options (nil is the zero value): NoProjections opens
// a bare log, ReadOnly a store that changes nothing (above), Adopt adds
// peon's tables to a database of other tables, and three fields make the
// store observable:
//
//	store, err := persistence.OpenWith(ctx, dsn, &persistence.Options{
//		Logger:         slog.Default(),            // nil discards
//		TracerProvider: otel.GetTracerProvider(),  // nil: no spans
//		MeterProvider:  otel.GetMeterProvider(),   // nil: no metrics
//	})
//
// Logger gets the operational events: each migration applied (version,
// duration), the store opened, projection catch-up and rebuild progress
// (started, at most every 5 s, done with counts and duration), Verify,
// Export and Import done, work that failed, and the reconnects and errors
// of the background watchers (PostgreSQL's listener, SQLite's
// data_version poll) and of reads a resuming subscription retries. Append
// never logs. TracerProvider and MeterProvider are the OpenTelemetry API's
// interfaces: the package never imports the SDK. Spans: peon.append,
// peon.replay.page (one per page read, not per event),
// peon.subscribe.catch_up, peon.migrate, peon.catch_up, peon.rebuild,
// peon.verify, peon.export, peon.import. Metrics: peon.append.events (a
// counter by peon.append.outcome), peon.append.duration (a histogram, in
// seconds) and peon.subscribe.lag (a gauge: events the slowest live
// subscription is behind the head). docs/OBSERVABILITY.md lists every
// name, unit and attribute. With neither provider, Append does no
// telemetry work.
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
// StreamVersion returns a stream's current version (NoStream when it has
// no events) with one read of the stream index, so a service that
// restarts sets ExpectedVersions without reading the stream:
//
//	v, err := store.StreamVersion(ctx, orchestration.ThreadStream("t1"))
//	recs, err := store.Append(ctx, &persistence.AppendOpts{
//		ExpectedVersions: map[string]int64{orchestration.ThreadStream("t1"): v},
//	}, orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now})
//
// A database error ends a Subscribe; SubscribeWith with
// SubscribeOpts.Resume goes on through lost connections instead, yielding
// a *RetryError for each failed read and reading again, with backoff, from
// the event after the last one it yielded:
//
//	for rec, err := range store.SubscribeWith(ctx, lastSeen, &persistence.SubscribeOpts{Resume: true}) {
//		var re *persistence.RetryError
//		if errors.As(err, &re) {
//			log.Print(re) // "…; retrying in 200ms (attempt 2)"
//			continue
//		}
//		…
//	}
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
//     nothing and returns the first Append's records, also after a restart,
//     when it carries the same events: the same types, streams and data in
//     the same order, their At time aside (a command handled again stamps its
//     events later; correlation and causation ids and expected versions do
//     not count either). Other events under a stored CommandID are refused
//     with a *CommandConflictError (errors.Is ErrCommandConflict) naming the
//     command and the sequences it is stored at.
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
//   - Group commit: Appends of one store that arrive while a commit is in
//     flight are committed together in the next transaction, which the
//     first of them leads (no timer: a lone Append begins at once; while
//     Appends are concurrent a leader yields the CPU once, so that those
//     runnable join its group). Each keeps its own guarantees: its events
//     are contiguous, its expected versions and command id are checked as
//     the earlier Appends of the group left the log, an Append that fails
//     is rolled back to its own savepoint and fails alone, and every
//     caller is answered once the group's COMMIT is durable. One whose
//     context ends while it is queued leaves the queue with its context's
//     error, nothing written; once its group began it gets the group's
//     outcome. AppendTx is not grouped.
//   - Streaming: replays and reads hold one page of rows at a time and no
//     connection while the loop body runs, and stop when ctx ends.
//   - Honest on bad data: an undecodable stored row is yielded with a
//     *DecodeError naming its sequence and type, and the replay goes on.
//
// # What Append and Import admit
//
// One set of rules, applied to every event by Append and AppendTx (before
// any lock is taken) and by Import alike; a refused event is an
// *InvalidEventError (errors.Is ErrInvalidEvent) naming its index, its
// type and, through an *orchestration.FieldError, the field, and nothing
// of the batch (or import) is written:
//
//   - only the catalogue's types (or pointers to them, stored as values);
//     a type of the caller's is refused whatever its EventType says;
//   - ids and keys (project, thread, turn and message ids, git refs,
//     setting keys, and the command, correlation and causation ids) of at
//     most MaxIDBytes (1,024) bytes, so that an index entry fits every
//     engine (PostgreSQL's btree takes 2,704 bytes at most);
//   - a JSON value nested at most MaxJSONDepth (64) levels;
//   - structurally valid (the type's Validate method);
//   - a payload of at most MaxPayloadBytes (1 MiB), encoded;
//   - strings and JSON values in valid UTF-8, strings without NUL bytes.
//
// An admitted event is normalized (orchestration.Normalize) before it is
// encoded: the At time in UTC, and a JSON value in canonical form: no
// whitespace, strings escaped one way, without HTML escaping (see
// package orchestration). The payload, the settings projection and the
// export all hold that one form, so the value reads back as the same
// bytes and Verify agrees with a rebuild.
//
// Errors quote ids and names clipped to their first 48 bytes, with an
// ellipsis and the full length ("thread:0123456789"… (1031 bytes)); the
// typed errors' fields keep the whole value.
//
// # Moving a store
//
// Export writes the log as JSON Lines, one event per line with its
// sequence, ids and metadata; Import reads that format into an empty store,
// all or nothing (a malformed line, named by its number, a full disk or
// the end of its context writes nothing). It reads and checks its input
// without the write lock, staging it in a temporary table with the
// projections built beside it, and holds the lock only for the one
// transaction that moves the events in and swaps the projections in.
// Migrations reports which embedded migrations a database has applied, and
// PendingMigrations what Migrate would apply, with its SQL, both without
// migrating or changing it.
//
// # Growth
//
// Stats (StatsWith for a policy) reads, from one snapshot and without
// changing anything, the events and payload bytes of each type, the
// largest streams, the size of the database and of each table, and what
// a Retention policy would remove now: the message.delta events that
// compaction would fold (messages completed over CompactAfter ago, 24 h
// by default) and the streams of threads and projects deleted or
// archived over PruneDeletedAfter or PruneArchivedAfter ago (off by
// default).
//
// Compact folds, for each message completed before a horizon
// (CompactOpts.Until, CompactOpts.OlderThan; 24 h by default), the
// message.delta events between its message.added and its
// message.completed into one, in short transactions while appends go on,
// and records each gap it leaves in the compactions table: projections,
// stream versions and idempotency do not change, Verify and Rebuild
// accept exactly the recorded gaps, and Export and Import carry them. A
// reader that resumes inside a folded range misses the deltas it had not
// read; docs/RETENTION.md says exactly what each reader sees.
//
// Prune removes the streams of threads and projects deleted (or threads
// archived) before PruneOpts' cut-offs, with their projection rows, a
// project's threads with it: what Stats counts as prunable. It writes
// their events to PruneOpts.Archive first when set, works one stream per
// transaction, and leaves a Tombstone per stream: Verify counts its
// sequences as recorded gaps, Export and Import carry it, and an Append
// to the stream fails with ErrStreamPruned, taking no sequence. See
// docs/RETENTION.md.
//
// Maintain applies a Retention once: Prune under its prune ages, then
// Compact under CompactAfter, then gives the space back;
// MaintainWithReport also returns the events removed and bytes
// reclaimed. Options.Retention makes a store apply it by itself, at open
// and then every Options.MaintainEvery (an hour by default), logging
// each run ("peon: maintenance done").
//
// # Projections
//
// Rebuild recomputes the projection tables from the log in temporary
// tables and swaps them in in one short write transaction, so appends go
// on meanwhile, and its RebuildResult counts the rows it had to leave out
// (undecodable rows, sequences missing from the log); Verify runs the
// engine's own integrity check (SQLite's integrity_check, PostgreSQL's
// amcheck when installed), checks the log's integrity and compares the
// tables with a rebuild it builds the same way, without the write lock;
// package projection reads them. A streaming message's deltas stay in
// the log, the only place an append writes them, until its
// message.completed folds them into its row; its text so far is in
// projection.Reader's Thread and, for a SQL shell, in the view
// projection_messages_live, which read them from the log
// (docs/PROJECTIONS.md).
package persistence
