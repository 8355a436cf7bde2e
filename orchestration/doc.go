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
//
// Strings are escaped as encoding/json escapes them, but without HTML
// escaping: `<`, `>` and `&` are themselves; U+2028 and U+2029 are
// escaped.
//
// # Normal form
//
// Normalize returns an event in the form the store keeps it, so that an
// appended event equals the one read back: the value type of a pointer,
// `at` in UTC, and a JSON value (SettingChanged.Value) in canonical form:
//
//   - no whitespace between tokens;
//   - strings escaped as Encode escapes string fields (`\"`, `\\`, \b \f
//     \n \r \t; other control characters, U+2028 and U+2029 as \u00xx,
//     \u2028 and \u2029; a lone UTF-16 surrogate as its \udxxx escape),
//     every other character as itself: `"\u003cb\u003e"` becomes `"<b>"`;
//   - numbers, literals and object keys (their order, duplicates) as
//     given.
//
// It is the same JSON value, spelled one way: `{ "a" : "\u0041" }` is
// kept as `{"a":"A"}`.
//
// # Validation and the store's limits
//
// Validate checks what every event must hold (ids and required strings
// non-empty, a known role, `at` set, a JSON value). The store adds its
// own limits when it admits an event (package persistence: catalogued
// types only, see Catalogued; ids of at most persistence.MaxIDBytes; JSON
// values nested at most persistence.MaxJSONDepth levels; payloads of at
// most persistence.MaxPayloadBytes). They are not part of Validate, so
// that events stored before a limit existed still read back.
package orchestration
