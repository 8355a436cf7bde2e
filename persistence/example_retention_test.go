package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// reply appends a project and its thread, whose assistant streamed one reply in three
// deltas, all at now (days ago).
func reply(ctx context.Context, store *persistence.Store, thread string) {
	evs := []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: thread + "-p", Name: thread, WorkspaceRoot: "/src/" + thread, At: now},
		orchestration.ThreadCreated{ThreadID: thread, ProjectID: thread + "-p", Title: thread, Model: "gpt-5", At: now},
		orchestration.TurnStarted{ThreadID: thread, TurnID: thread + "-u", At: now},
		orchestration.MessageAdded{ThreadID: thread, TurnID: thread + "-u", MessageID: thread + "-m", Role: orchestration.RoleAssistant, Streaming: true, At: now},
	}
	for _, d := range []string{"The fix ", "is in ", "main."} {
		evs = append(evs, orchestration.MessageDelta{ThreadID: thread, TurnID: thread + "-u", MessageID: thread + "-m", Delta: d, At: now})
	}
	evs = append(evs, orchestration.MessageCompleted{ThreadID: thread, TurnID: thread + "-u", MessageID: thread + "-m", At: now})
	store.Append(ctx, nil, evs...)
}

// twoThreads appends the threads "kept" and "gone" with a streamed reply
// each, and deletes "gone", all at now (days ago).
func twoThreads(ctx context.Context, store *persistence.Store) {
	reply(ctx, store, "kept")
	reply(ctx, store, "gone")
	store.Append(ctx, nil, orchestration.ThreadDeleted{ThreadID: "gone", At: now})
}

// Maintain applies a retention policy once: it prunes the threads deleted
// more than PruneDeletedAfter ago, then folds the streamed replies
// completed more than CompactAfter ago, then gives the space back.
func ExampleStore_Maintain() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	twoThreads(ctx, store) // "kept" and "gone", deleted days ago; a streamed reply each

	err := store.Maintain(ctx, persistence.Retention{CompactAfter: time.Hour, PruneDeletedAfter: 24 * time.Hour})
	fmt.Println("maintained:", err)
	for rec, err := range store.ReadStream(ctx, orchestration.ThreadStream("kept"), 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		if d, ok := rec.Event.(orchestration.MessageDelta); ok {
			fmt.Printf("version %d: %q\n", rec.StreamVersion, d.Delta)
		}
	}
	_, err = store.Append(ctx, nil, orchestration.ThreadRenamed{ThreadID: "gone", Title: "back", At: now})
	fmt.Println(err, errors.Is(err, persistence.ErrStreamPruned))
	// Output:
	// maintained: <nil>
	// version 4: "The fix is in main."
	// stream thread:gone was pruned: it takes no more events true
}

// MaintainWithReport is Maintain, returning what it removed.
func ExampleStore_MaintainWithReport() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	twoThreads(ctx, store) // "kept" and "gone", deleted days ago; a streamed reply each

	rep, err := store.MaintainWithReport(ctx, persistence.Retention{CompactAfter: time.Hour, PruneDeletedAfter: 24 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("streams pruned:", rep.Prune.Streams, "events:", rep.Prune.Events)
	fmt.Println("messages folded:", rep.Compact.Messages, "events removed:", rep.Compact.Events)
	fmt.Println("events removed in all:", rep.Events)
	// Output:
	// streams pruned: 1 events: 8
	// messages folded: 1 events removed: 2
	// events removed in all: 10
}
