package orchestration_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/peonhq/peon/orchestration"
)

var now = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

// An event is a value: its type name and stream come from its methods.
func ExampleProjectCreated() {
	var e orchestration.Event = orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now}
	fmt.Println(e.EventType(), e.StreamID(), e.OccurredAt().Format(time.RFC3339))
	fmt.Println(orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: now}.StreamID())
	fmt.Println(orchestration.SettingChanged{Key: "ui.theme", Value: []byte(`"dark"`), At: now}.StreamID())
	// Output:
	// project.created project:p1 2026-11-28T09:30:00Z
	// thread:t1
	// settings
}

// Validate names the field that is wrong; the store refuses such an event
// and writes nothing of its append.
func ExampleMessageAdded_Validate() {
	ok := orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleAssistant, Streaming: true, At: now}
	fmt.Println(ok.Validate())

	bad := ok
	bad.Role = "robot"
	err := bad.Validate()
	var fe *orchestration.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field, "·", err)
	}
	// Output:
	// <nil>
	// role · field "role" is "robot", want user, assistant, system or tool
}

// Encode writes the payload the store keeps: the fields in snake_case,
// without the type.
func ExampleEncode() {
	payload, err := orchestration.Encode(orchestration.TurnFailed{ThreadID: "t1", TurnID: "u1", Error: "529 overloaded", At: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(payload))
	// Output: {"thread_id":"t1","turn_id":"u1","error":"529 overloaded","at":"2026-11-28T09:30:00Z"}
}

// Decode turns a type name and payload back into the value type.
func ExampleDecode() {
	e, err := orchestration.Decode(orchestration.TypeTurnFailed, []byte(`{"thread_id":"t1","turn_id":"u1","error":"529 overloaded","at":"2026-11-28T09:30:00Z"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	failed := e.(orchestration.TurnFailed)
	fmt.Println(failed.TurnID, failed.Error, failed.At.Equal(now))

	_, err = orchestration.Decode("turn.exploded", []byte(`{}`))
	fmt.Println(errors.Is(err, orchestration.ErrUnknownType), err)
	// Output:
	// u1 529 overloaded true
	// true unknown event type "turn.exploded"
}

// The registry knows every catalogued type by name.
func ExampleTypes() {
	types := orchestration.Types()
	fmt.Println(len(types), types[0], types[len(types)-1])
	fmt.Println(orchestration.Known(orchestration.TypeMessageDelta), orchestration.Known("message.deleted"))
	// Output:
	// 17 checkpoint.created turn.started
	// true false
}
