// Package orchestration is peon's event catalogue: one Go type per domain
// event, the registry from type name to type, the payload codec and the
// structural validation every event passes before it is stored.
//
// # Events
//
// Seventeen types describe everything peon records: projects, threads,
// turns, messages, checkpoints and settings. Each is a struct named after
// its type (ProjectCreated for "project.created") that implements Event
// on a value receiver. The type name is written once, as a Type…
// constant returned by EventType; the store's event_type column, the JSON
// export and the registry all take it from there.
//
// # Streams
//
// Project events go to "project:<project_id>", thread, turn, message and
// checkpoint events to "thread:<thread_id>", settings to "settings".
//
// # Payloads
//
// Encode writes an event's fields as a JSON object with snake_case keys
// (the type is not repeated); Decode turns a type name and payload back
// into the value type.
//
//	payload, _ := orchestration.Encode(orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now})
//	e, _ := orchestration.Decode(orchestration.TypeProjectCreated, payload)
//	created := e.(orchestration.ProjectCreated)
package orchestration
