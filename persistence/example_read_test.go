package persistence_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// session appends a short thread: created, a turn with one message, done.
func session(ctx context.Context, store *persistence.Store) {
	store.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now})
	store.Append(ctx, nil,
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: now.Add(time.Second)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "CI is red", At: now.Add(time.Second)},
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u1", At: now.Add(time.Minute)})
}

// A reader that saw events up to sequence 3 resumes with ReplayFrom(4).
func ExampleStore_ReplayFrom() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	session(ctx, store)

	lastSeen := int64(3)
	for rec, err := range store.ReplayFrom(ctx, lastSeen+1) {
		if err != nil {
			fmt.Println(err) // a *persistence.DecodeError for a bad row; the replay goes on
			continue
		}
		fmt.Println(rec.Sequence, rec.Type)
	}
	// Output:
	// 4 message.added
	// 5 turn.completed
}

// ReadStream reads one stream in version order, here a thread from its
// second event on.
func ExampleStore_ReadStream() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	session(ctx, store)

	for rec, err := range store.ReadStream(ctx, orchestration.ThreadStream("t1"), 2) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.StreamVersion, rec.Type, rec.OccurredAt.Format(time.TimeOnly))
	}
	// Output:
	// 2 turn.started 09:30:01
	// 3 message.added 09:30:01
	// 4 turn.completed 09:31:00
}

// Head is the sequence of the last event, 0 for an empty log.
func ExampleStore_Head() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	empty, _ := store.Head(ctx)
	session(ctx, store)
	head, _ := store.Head(ctx)
	fmt.Println(empty, head)
	// Output: 0 5
}

// After a restart, a service learns where a stream is with StreamVersion,
// without reading the stream, and appends with that expected version; a
// stream with no events is at NoStream.
func ExampleStore_StreamVersion() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peon-example")
	defer os.RemoveAll(dir)
	store, _ := persistence.OpenDir(ctx, dir)
	session(ctx, store)
	store.Close()

	store, _ = persistence.OpenDir(ctx, dir) // the service starts again
	defer store.Close()
	thread := orchestration.ThreadStream("t1")
	v, err := store.StreamVersion(ctx, thread)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(thread, "is at version", v)
	recs, err := store.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{thread: v}},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now.Add(time.Hour)})
	if err != nil {
		fmt.Println(err) // ErrVersionConflict when another writer appended meanwhile
		return
	}
	fmt.Println("appended version", recs[0].StreamVersion)

	none, _ := store.StreamVersion(ctx, orchestration.ThreadStream("t2"))
	fmt.Println(none == persistence.NoStream)
	// Output:
	// thread:t1 is at version 4
	// appended version 5
	// true
}

// Subscribe yields the history after a sequence, then each event as it is
// appended, until its context ends.
func ExampleStore_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	session(ctx, store)

	go func() { // another part of the program, appending later
		store.Append(ctx, nil, orchestration.ThreadArchived{ThreadID: "t1", At: now.Add(time.Hour)})
	}()
	for rec, err := range store.Subscribe(ctx, 3) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.Sequence, rec.Type)
		if rec.Type == orchestration.TypeThreadArchived {
			cancel() // the loop ends without an error
		}
	}
	// Output:
	// 4 message.added
	// 5 turn.completed
	// 6 thread.archived
}
