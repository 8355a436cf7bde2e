package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

var t0 = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// sessionStore is a store holding two projects, three threads (one of
// them archived), a turn that was reverted to a checkpoint, and settings.
func sessionStore() *persistence.Store {
	ctx := context.Background()
	store, err := persistence.OpenMemory(ctx)
	if err != nil {
		panic(err)
	}
	user, assistant := orchestration.RoleUser, orchestration.RoleAssistant
	_, err = store.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at(0)},
		orchestration.ProjectCreated{ProjectID: "p2", Name: "docs", WorkspaceRoot: "/src/docs", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: at(2)},
		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p1", Title: "Old spike", Model: "gpt-5", At: at(3)},
		orchestration.ThreadCreated{ThreadID: "t3", ProjectID: "p2", Title: "Typos", Model: "claude", At: at(4)},
		orchestration.ThreadArchived{ThreadID: "t2", At: at(5)},

		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(10)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: user, Text: "CI is red", At: at(10)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Role: assistant, Streaming: true, At: at(11)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "Pinned the ", At: at(12)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "linter.", At: at(13)},
		orchestration.MessageCompleted{ThreadID: "t1", TurnID: "u1", MessageID: "m2", At: at(14)},
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u1", At: at(15)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "u1", GitRef: "a1b2c3", Message: "after turn 1", At: at(16)},

		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u2", At: at(20)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u2", MessageID: "m3", Role: user, Text: "Also bump Go", At: at(20)},
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u2", At: at(25)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "u2", GitRef: "d4e5f6", Message: "after turn 2", At: at(26)},
		orchestration.CheckpointReverted{ThreadID: "t1", GitRef: "a1b2c3", At: at(30)},

		orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`"dark"`), At: at(40)},
		orchestration.SettingChanged{Key: "agent.model", Value: json.RawMessage(`"gpt-5"`), At: at(41)},
	)
	if err != nil {
		panic(err)
	}
	return store
}

// A Reader reads the projection tables of a store.
func ExampleNewReader() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()

	r := projection.NewReader(store)
	threads, err := r.Threads(ctx, &projection.ThreadFilter{ProjectID: "p1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range threads {
		fmt.Println(t.ID, t.Title, t.Status, t.TurnCount, "turns")
	}
	// Output: t1 Fix CI idle 2 turns
}

func ExampleReader_Projects() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()

	projects, _ := projection.NewReader(store).Projects(ctx, nil)
	for _, p := range projects {
		fmt.Println(p.ID, p.Name, p.WorkspaceRoot, p.CreatedAt.Format(time.TimeOnly))
	}
	// Output:
	// p1 peon /src/peon 09:30:00
	// p2 docs /src/docs 09:30:01
}

// Threads leaves out archived and deleted threads unless the filter asks
// for them.
func ExampleReader_Threads() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()
	r := projection.NewReader(store)

	active, _ := r.Threads(ctx, nil)
	all, _ := r.Threads(ctx, &projection.ThreadFilter{IncludeArchived: true, IncludeDeleted: true})
	fmt.Println(len(active), "active of", len(all))
	for _, t := range all {
		fmt.Println(t.ID, t.ProjectID, t.Title, t.ArchivedAt != nil)
	}
	// Output:
	// 2 active of 3
	// t1 p1 Fix CI false
	// t2 p1 Old spike true
	// t3 p2 Typos false
}

// Thread returns a thread with its turns in order, each with its
// messages; the turn after the checkpoint it was reverted to is reverted.
func ExampleReader_Thread() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()
	r := projection.NewReader(store)

	d, err := r.Thread(ctx, "t1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Title, "·", d.MessageCount, "messages")
	for _, turn := range d.Turns {
		fmt.Println("turn", turn.Ordinal, turn.Status, turn.CheckpointRef)
		for _, m := range turn.Messages {
			fmt.Printf("  %s: %s\n", m.Role, m.Text)
		}
	}
	_, err = r.Thread(ctx, "nope")
	fmt.Println(errors.Is(err, projection.ErrNotFound))
	// Output:
	// Fix CI · 3 messages
	// turn 1 completed a1b2c3
	//   user: CI is red
	//   assistant: Pinned the linter.
	// turn 2 reverted d4e5f6
	//   user: Also bump Go
	// true
}

func ExampleReader_Checkpoints() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()

	checkpoints, _ := projection.NewReader(store).Checkpoints(ctx, "t1")
	for _, c := range checkpoints {
		state := "kept"
		if c.RevertedAt != nil {
			state = "reverted at " + c.RevertedAt.Format(time.TimeOnly)
		}
		fmt.Println(c.TurnID, c.GitRef, c.Message, "·", state)
	}
	// Output:
	// u1 a1b2c3 after turn 1 · kept
	// u2 d4e5f6 after turn 2 · reverted at 09:30:30
}

func ExampleReader_Settings() {
	ctx := context.Background()
	store := sessionStore()
	defer store.Close()

	settings, _ := projection.NewReader(store).Settings(ctx)
	for _, s := range settings {
		fmt.Println(s.Key, "=", string(s.Value))
	}
	// Output:
	// agent.model = "gpt-5"
	// ui.theme = "dark"
}
