package persistence_test

import (
	"bytes"
	"context"
	"errors"
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

// Import checks every line before it writes anything: a wrong line is an
// *ImportError naming it, and a store that holds events is refused unless
// ImportOpts.Force is set.
func ExampleStore_Import() {
	ctx := context.Background()
	src, _ := persistence.OpenMemory(ctx)
	defer src.Close()
	src.Append(ctx, nil, orchestration.SettingChanged{Key: "theme", Value: []byte(`"dark"`), At: now})
	var jsonl bytes.Buffer
	src.Export(ctx, &jsonl, nil)

	dst, _ := persistence.OpenMemory(ctx)
	defer dst.Close()
	broken := append(bytes.Clone(jsonl.Bytes()), "{not json\n"...)
	_, err := dst.Import(ctx, bytes.NewReader(broken), nil)
	var ie *persistence.ImportError
	if errors.As(err, &ie) {
		fmt.Println("line", ie.Line, "is wrong; nothing was imported")
	}
	head, _ := dst.Head(ctx)
	fmt.Println("head:", head)

	res, _ := dst.Import(ctx, bytes.NewReader(jsonl.Bytes()), nil)
	fmt.Println("imported", res.Events, "sequences", res.First, "to", res.Last)
	_, err = dst.Import(ctx, bytes.NewReader(jsonl.Bytes()), nil)
	fmt.Println(errors.Is(err, persistence.ErrNotEmpty))
	// Output:
	// line 2 is wrong; nothing was imported
	// head: 0
	// imported 1 sequences 1 to 1
	// true
}
