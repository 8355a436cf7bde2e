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

// Open takes a SQLite path, a sqlite:// URL or a postgres:// URL; a SQLite
// file is created and migrated on first use, and keeps its events.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peon-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "peon.db")

	store, err := persistence.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	store.Append(ctx, nil, orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now})
	store.Close()

	again, err := persistence.Open(ctx, "sqlite://"+path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer again.Close()
	head, _ := again.Head(ctx)
	fmt.Println(again.Target().Dialect, "head:", head)
	// Output: sqlite head: 1
}

// An in-memory store is private to its *Store and gone when it is closed:
// what tests want.
func ExampleOpenMemory() {
	ctx := context.Background()
	store, err := persistence.OpenMemory(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println(store.Target().Display, store.Target().Memory)
	// Output: :memory: true
}

// OpenWith takes Options; NoProjections opens a bare log, for a tool that
// reads or writes only the events.
func ExampleOpenWith() {
	ctx := context.Background()
	store, err := persistence.OpenWith(ctx, ":memory:", &persistence.Options{NoProjections: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	store.Append(ctx, nil, orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now})

	head, _ := store.Head(ctx)
	projects, _ := projection.NewReader(store).Projects(ctx, nil)
	fmt.Println("events:", head, "projects:", len(projects))
	// Output: events: 1 projects: 0
}
