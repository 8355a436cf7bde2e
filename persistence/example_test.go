package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

var now = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

func ExampleOpenDir() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peon-example-")
	defer os.RemoveAll(dir)

	store, err := persistence.OpenDir(ctx, filepath.Join(dir, "data"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	head, _ := store.Head(ctx)
	info, _ := os.Stat(filepath.Join(dir, "data", persistence.DBFileName))
	fmt.Println("head:", head, "mode:", info.Mode().Perm())
	// Output: head: 0 mode: -rw-------
}

func ExampleStore_Append() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()

	recs, err := store.Append(ctx, &persistence.AppendOpts{CommandID: "open-project-1"},
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r.Sequence, r.StreamID, r.StreamVersion, r.Type)
	}

	// The stream exists now: expecting it not to is a conflict.
	_, err = store.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t1": persistence.NoStream}},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now})
	fmt.Println(errors.Is(err, persistence.ErrVersionConflict), err)

	// The projections moved in the same transaction.
	threads, _ := projection.NewReader(store).Threads(ctx, nil)
	fmt.Println(threads[0].Title, threads[0].Status)
	// Output:
	// 1 project:p1 1 project.created
	// 2 thread:t1 1 thread.created
	// true version conflict on thread:t1: expected no stream, it is at version 1
	// Fix CI idle
}

func ExampleStore_ReplayAll() {
	ctx := context.Background()
	store, _ := persistence.OpenMemory(ctx)
	defer store.Close()
	store.Append(ctx, nil,
		orchestration.SettingChanged{Key: "theme", Value: []byte(`"dark"`), At: now},
		orchestration.SettingChanged{Key: "theme", Value: []byte(`"light"`), At: now.Add(time.Minute)},
	)

	for rec, err := range store.ReplayAll(ctx) {
		if err != nil {
			fmt.Println(err)
			continue
		}
		e := rec.Event.(orchestration.SettingChanged)
		fmt.Println(rec.Sequence, e.Key, string(e.Value), e.At.Format(time.Kitchen))
	}
	// Output:
	// 1 theme "dark" 9:30AM
	// 2 theme "light" 9:31AM
}
