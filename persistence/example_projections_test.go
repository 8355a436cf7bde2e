package persistence_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// Verify proves the projection tables equal a rebuild from the log; a row
// changed behind the store's back is a problem, and Rebuild repairs it.
func ExampleStore_Verify() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	session(ctx, store)

	report, err := store.Verify(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(report.OK(), report.Events, "events in", report.Streams, "streams")

	store.Client().Thread.UpdateOneID("t1").SetTitle("tampered").ExecX(ctx)
	report, _ = store.Verify(ctx)
	for _, p := range report.Problems {
		fmt.Println(p)
	}
	// Output:
	// true 5 events in 2 streams
	// projection projection_threads t1.title: stored tampered, expected Fix CI
}

// Rebuild recomputes the projection tables from the log, and says what it
// had to leave out.
func ExampleStore_Rebuild() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	session(ctx, store)
	store.Client().Thread.UpdateOneID("t1").SetTitle("tampered").ExecX(ctx)

	var res persistence.RebuildResult
	err := store.Rebuild(ctx, &persistence.RebuildOpts{
		Progress: func(done, total int64) { fmt.Printf("%d/%d\n", done, total) },
		Result:   &res,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("applied", res.Events, "undecodable", res.Undecodable, "missing", res.Missing)
	thread, _ := projection.NewReader(store).Thread(ctx, "t1")
	fmt.Println(thread.Title)
	// Output:
	// 0/5
	// 5/5
	// applied 5 undecodable 0 missing 0
	// Fix CI
}

// CatchUp brings the projections up to the head of the log: here after a
// bare-log writer, another store on the same file, appended without them.
func ExampleStore_CatchUp() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peon-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "peon.db")

	store, _ := persistence.Open(ctx, path)
	defer store.Close()
	bare, _ := persistence.OpenWith(ctx, path, &persistence.Options{NoProjections: true})
	bare.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
		orchestration.ProjectRenamed{ProjectID: "p1", Name: "peon-core", At: now})
	bare.Close()

	n, err := store.CatchUp(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	projects, _ := projection.NewReader(store).Projects(ctx, nil)
	fmt.Println("applied", n, "events:", projects[0].Name)
	// Output: applied 2 events: peon-core
}
