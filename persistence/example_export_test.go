package persistence_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// A store moves to another one, of either engine, as JSON Lines.
func ExampleStore_Export() {
	ctx := context.Background()
	src, _ := persistence.OpenMemory(ctx)
	defer src.Close()
	src.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
		orchestration.ProjectRenamed{ProjectID: "p1", Name: "peon-core", At: now})

	var jsonl bytes.Buffer
	n, err := src.Export(ctx, &jsonl, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dst, _ := persistence.OpenMemory(ctx)
	defer dst.Close()
	res, err := dst.Import(ctx, bytes.NewReader(jsonl.Bytes()), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var again bytes.Buffer
	dst.Export(ctx, &again, nil)
	fmt.Println("exported", n, "imported", res.Events, "projected", res.Projected, "identical", bytes.Equal(jsonl.Bytes(), again.Bytes()))
	// Output: exported 2 imported 2 projected 2 identical true
}
