package peontest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/peontest"
	"github.com/peonhq/peon/projection"
)

// testRenameThread is a test of an application's. In the application's
// package it reads func TestRenameThread(t *testing.T), and go test runs
// it; testing.TB lets the example run it too.
func testRenameThread(t testing.TB) {
	store := peontest.Open(t) // migrated, empty, closed when the test ends
	ctx := t.Context()
	now := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	_, err := store.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	th, err := projection.NewReader(store).Thread(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(th.Title, th.UpdatedAt.Format(time.TimeOnly))
}

func ExampleOpen() {
	// runTest runs testRenameThread as go test would run TestRenameThread,
	// with a stand-in for the *testing.T (see fake_test.go).
	t := runTest(context.Background(), testRenameThread)
	fmt.Println("failures:", t.failures())
	// Output:
	// Fix the CI 09:31:00
	// failures: []
}
