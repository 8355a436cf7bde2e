package persistencetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/peonhq/peon/orchestration"
)

// T0 is the time the fixtures start at.
var T0 = time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)

// at returns T0 plus n seconds.
func at(n int) time.Time { return T0.Add(time.Duration(n) * time.Second) }

// Catalogue returns one valid event of every catalogued type, in an order
// that makes sense as a session.
func Catalogue() []orchestration.Event {
	return []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: at(0)},
		orchestration.ProjectRenamed{ProjectID: "p1", Name: "peon-core", At: at(1)},
		orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix the build", Model: "gpt-5", At: at(2)},
		orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI build", At: at(3)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u1", At: at(4)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "Why does CI fail?", At: at(5)},
		orchestration.MessageAdded{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Role: orchestration.RoleAssistant, Streaming: true, At: at(6)},
		orchestration.MessageDelta{ThreadID: "t1", TurnID: "u1", MessageID: "m2", Delta: "It is \"gofmt\" — ünïcode ✓", At: at(7)},
		orchestration.MessageCompleted{ThreadID: "t1", TurnID: "u1", MessageID: "m2", At: at(8)},
		orchestration.TurnCompleted{ThreadID: "t1", TurnID: "u1", At: at(9)},
		orchestration.CheckpointCreated{ThreadID: "t1", TurnID: "u1", GitRef: "refs/peon/u1", Message: "after turn 1", At: at(10)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u2", At: at(11)},
		orchestration.TurnFailed{ThreadID: "t1", TurnID: "u2", Error: "provider timeout", At: at(12)},
		orchestration.TurnStarted{ThreadID: "t1", TurnID: "u3", At: at(13)},
		orchestration.TurnInterrupted{ThreadID: "t1", TurnID: "u3", At: at(14)},
		orchestration.CheckpointReverted{ThreadID: "t1", GitRef: "refs/peon/u1", At: at(15)},
		orchestration.ThreadArchived{ThreadID: "t1", At: at(16)},
		orchestration.ThreadDeleted{ThreadID: "t1", At: at(17)},
		orchestration.SettingChanged{Key: "theme", Value: json.RawMessage(`{"mode":"dark","size":14}`), At: at(18)},
		orchestration.ProjectDeleted{ProjectID: "p1", At: at(19)},
	}
}

// Deltas returns a streamed assistant reply in thread threadID: a turn, a
// message and n deltas.
func Deltas(threadID string, n int) []orchestration.Event {
	turn, msg := threadID+"-turn", threadID+"-msg"
	evs := []orchestration.Event{
		orchestration.TurnStarted{ThreadID: threadID, TurnID: turn, At: at(0)},
		orchestration.MessageAdded{ThreadID: threadID, TurnID: turn, MessageID: msg, Role: orchestration.RoleAssistant, Streaming: true, At: at(1)},
	}
	for i := range n {
		evs = append(evs, orchestration.MessageDelta{ThreadID: threadID, TurnID: turn, MessageID: msg,
			Delta: fmt.Sprintf("token %d ", i), At: at(2 + i)})
	}
	return evs
}

// RandomEvents returns n structurally valid events over a small pool of
// ids, so that many refer to rows that exist and some to rows that do not
// (or not yet), with repeats of created events.
func RandomEvents(rng *rand.Rand, n int) []orchestration.Event {
	pick := func(prefix string, k int) string { return fmt.Sprintf("%s%d", prefix, rng.IntN(k)) }
	roles := []orchestration.Role{orchestration.RoleUser, orchestration.RoleAssistant, orchestration.RoleSystem, orchestration.RoleTool}
	evs := make([]orchestration.Event, 0, n)
	for i := range n {
		when := at(i)
		p, t, u, m := pick("p", 3), pick("t", 4), pick("u", 8), pick("m", 12)
		var e orchestration.Event
		switch rng.IntN(20) {
		case 0:
			e = orchestration.ProjectCreated{ProjectID: p, Name: "name " + p, WorkspaceRoot: "/w/" + p, At: when}
		case 1:
			e = orchestration.ProjectRenamed{ProjectID: p, Name: pick("renamed", 100), At: when}
		case 2:
			e = orchestration.ProjectDeleted{ProjectID: p, At: when}
		case 3:
			e = orchestration.ThreadCreated{ThreadID: t, ProjectID: p, Title: "title " + t, Model: "m", At: when}
		case 4:
			e = orchestration.ThreadRenamed{ThreadID: t, Title: pick("title", 100), At: when}
		case 5:
			e = orchestration.ThreadArchived{ThreadID: t, At: when}
		case 6:
			e = orchestration.ThreadDeleted{ThreadID: t, At: when}
		case 7, 8:
			e = orchestration.TurnStarted{ThreadID: t, TurnID: u, At: when}
		case 9:
			e = orchestration.TurnCompleted{ThreadID: t, TurnID: u, At: when}
		case 10:
			e = orchestration.TurnFailed{ThreadID: t, TurnID: u, Error: "boom", At: when}
		case 11:
			e = orchestration.TurnInterrupted{ThreadID: t, TurnID: u, At: when}
		case 12:
			e = orchestration.MessageAdded{ThreadID: t, TurnID: u, MessageID: m, Role: roles[rng.IntN(4)],
				Text: pick("text", 10), Streaming: rng.IntN(2) == 0, At: when}
		case 13, 14, 15:
			e = orchestration.MessageDelta{ThreadID: t, TurnID: u, MessageID: m, Delta: pick("δ", 10), At: when}
		case 16:
			e = orchestration.MessageCompleted{ThreadID: t, TurnID: u, MessageID: m, At: when}
		case 17:
			e = orchestration.CheckpointCreated{ThreadID: t, TurnID: u, GitRef: pick("ref", 4), Message: "cp", At: when}
		case 18:
			e = orchestration.CheckpointReverted{ThreadID: t, GitRef: pick("ref", 4), At: when}
		default:
			e = orchestration.SettingChanged{Key: pick("k", 3), Value: json.RawMessage(fmt.Sprint(rng.IntN(100))), At: when}
		}
		evs = append(evs, e)
	}
	return evs
}
