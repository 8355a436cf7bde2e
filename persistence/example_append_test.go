package persistence_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// A writer that read a stream at version N appends with ExpectedVersions
// N: when another writer got there first, the append fails and writes
// nothing, and the error says where the stream is now.
func ExampleVersionConflictError() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	store.Append(ctx, nil,
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now})

	// Two writers both read the stream at version 1; the first one wins.
	read := map[string]int64{orchestration.ThreadStream("t1"): 1}
	_, err := store.Append(ctx, &persistence.AppendOpts{ExpectedVersions: read},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now})
	fmt.Println("first:", err)
	_, err = store.Append(ctx, &persistence.AppendOpts{ExpectedVersions: read},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Repair CI", At: now})

	var conflict *persistence.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("second:", conflict.Stream, "expected", conflict.Expected, "is at", conflict.Actual)
	}
	fmt.Println(errors.Is(err, persistence.ErrVersionConflict))
	// Output:
	// first: <nil>
	// second: thread:t1 expected 1 is at 2
	// true
}

// AppendTx stores events inside a transaction the application holds, so
// its own writes and the events commit or roll back together.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()

	tx, err := store.Client().Tx(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, err := store.AppendTx(ctx, tx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now})
	if err != nil {
		tx.Rollback()
		fmt.Println(err)
		return
	}
	fmt.Println("appended sequence", recs[0].Sequence)
	tx.Rollback() // say the application's own write failed
	head, _ := store.Head(ctx)
	fmt.Println("after the rollback, head:", head)

	tx, _ = store.Client().Tx(ctx)
	store.AppendTx(ctx, tx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now})
	tx.Commit()
	head, _ = store.Head(ctx)
	fmt.Println("after the commit, head:", head)
	// Output:
	// appended sequence 1
	// after the rollback, head: 0
	// after the commit, head: 1
}
