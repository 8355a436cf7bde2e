package projection_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// setup returns a Reader over a private in-memory store holding evs,
// appended through the store's API.
func setup(t *testing.T, evs ...orchestration.Event) *projection.Reader {
	t.Helper()
	store, err := persistence.OpenMemory(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	if len(evs) > 0 {
		_, err = store.Append(t.Context(), nil, evs...)
		require.NoError(t, err)
	}
	return projection.NewReader(store)
}

func ptr(n int) *time.Time { v := at(n); return &v }

func TestProjects(t *testing.T) {
	t.Parallel()
	r := setup(t,
		orchestration.ProjectCreated{ProjectID: "pb", Name: "b", WorkspaceRoot: "/b", At: at(1)},
		orchestration.ProjectCreated{ProjectID: "pa", Name: "a", WorkspaceRoot: "/a", At: at(1)}, // same time: by id
		orchestration.ProjectCreated{ProjectID: "p0", Name: "zero", WorkspaceRoot: "/0", At: at(0)},
		orchestration.ProjectRenamed{ProjectID: "pa", Name: "A", At: at(2)},
		orchestration.ProjectDeleted{ProjectID: "pb", At: at(3)},
	)
	p0 := projection.Project{ID: "p0", Name: "zero", WorkspaceRoot: "/0", CreatedAt: at(0), UpdatedAt: at(0), LastSequence: 3}
	pa := projection.Project{ID: "pa", Name: "A", WorkspaceRoot: "/a", CreatedAt: at(1), UpdatedAt: at(2), LastSequence: 4}
	pb := projection.Project{ID: "pb", Name: "b", WorkspaceRoot: "/b", CreatedAt: at(1), UpdatedAt: at(3), DeletedAt: ptr(3), LastSequence: 5}

	for _, tc := range []struct {
		name string
		f    *projection.ProjectFilter
		want []projection.Project
	}{
		{"NilLeavesOutDeleted", nil, []projection.Project{p0, pa}},
		{"ZeroLeavesOutDeleted", &projection.ProjectFilter{}, []projection.Project{p0, pa}},
		{"IncludeDeleted", &projection.ProjectFilter{IncludeDeleted: true}, []projection.Project{p0, pa, pb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Projects(t.Context(), tc.f)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestProjectsOfAnEmptyStore(t *testing.T) {
	t.Parallel()
	r := setup(t)
	projects, err := r.Projects(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, projects)
	threads, err := r.Threads(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, threads)
	settings, err := r.Settings(t.Context())
	require.NoError(t, err)
	require.Empty(t, settings)
}

func TestThreads(t *testing.T) {
	t.Parallel()
	r := setup(t,
		orchestration.ProjectCreated{ProjectID: "p1", Name: "one", WorkspaceRoot: "/1", At: at(0)},
		orchestration.ProjectCreated{ProjectID: "p2", Name: "two", WorkspaceRoot: "/2", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "live", ProjectID: "p1", Title: "Live", Model: "m", At: at(1)},     // 3
		orchestration.ThreadCreated{ThreadID: "arch", ProjectID: "p1", Title: "Archived", Model: "m", At: at(2)}, // 4
		orchestration.ThreadCreated{ThreadID: "del", ProjectID: "p1", Title: "Deleted", Model: "m", At: at(3)},   // 5
		orchestration.ThreadCreated{ThreadID: "both", ProjectID: "p1", Title: "Both", Model: "m", At: at(4)},     // 6
		orchestration.ThreadCreated{ThreadID: "other", ProjectID: "p2", Title: "Other", Model: "n", At: at(1)},   // 7, same time as live: by id
		orchestration.ThreadArchived{ThreadID: "arch", At: at(5)},
		orchestration.ThreadDeleted{ThreadID: "del", At: at(6)},
		orchestration.ThreadArchived{ThreadID: "both", At: at(7)},
		orchestration.ThreadDeleted{ThreadID: "both", At: at(8)},
		orchestration.TurnStarted{ThreadID: "live", TurnID: "u1", At: at(9)}, // 12
		orchestration.MessageAdded{ThreadID: "live", TurnID: "u1", MessageID: "m1", Role: orchestration.RoleUser, Text: "hi", At: at(10)},
		orchestration.ThreadRenamed{ThreadID: "live", Title: "Still live", At: at(11)}, // 14
	)
	live := projection.Thread{ID: "live", ProjectID: "p1", Title: "Still live", Model: "m", Status: "running",
		TurnCount: 1, MessageCount: 1, LatestTurnID: "u1", CreatedAt: at(1), UpdatedAt: at(11), LastSequence: 14}
	other := projection.Thread{ID: "other", ProjectID: "p2", Title: "Other", Model: "n", Status: "idle",
		CreatedAt: at(1), UpdatedAt: at(1), LastSequence: 7}
	arch := projection.Thread{ID: "arch", ProjectID: "p1", Title: "Archived", Model: "m", Status: "idle",
		CreatedAt: at(2), UpdatedAt: at(5), ArchivedAt: ptr(5), LastSequence: 8}
	del := projection.Thread{ID: "del", ProjectID: "p1", Title: "Deleted", Model: "m", Status: "idle",
		CreatedAt: at(3), UpdatedAt: at(6), DeletedAt: ptr(6), LastSequence: 9}
	both := projection.Thread{ID: "both", ProjectID: "p1", Title: "Both", Model: "m", Status: "idle",
		CreatedAt: at(4), UpdatedAt: at(8), ArchivedAt: ptr(7), DeletedAt: ptr(8), LastSequence: 11}

	for _, tc := range []struct {
		name string
		f    *projection.ThreadFilter
		want []projection.Thread
	}{
		{"Nil", nil, []projection.Thread{live, other}},
		{"Zero", &projection.ThreadFilter{}, []projection.Thread{live, other}},
		{"Project", &projection.ThreadFilter{ProjectID: "p1"}, []projection.Thread{live}},
		{"OtherProject", &projection.ThreadFilter{ProjectID: "p2"}, []projection.Thread{other}},
		{"UnknownProject", &projection.ThreadFilter{ProjectID: "nope"}, []projection.Thread{}},
		{"IncludeArchived", &projection.ThreadFilter{IncludeArchived: true}, []projection.Thread{live, other, arch}},
		{"IncludeDeleted", &projection.ThreadFilter{IncludeDeleted: true}, []projection.Thread{live, other, del}},
		{"IncludeBoth", &projection.ThreadFilter{IncludeArchived: true, IncludeDeleted: true}, []projection.Thread{live, other, arch, del, both}},
		{"ProjectIncludeBoth", &projection.ThreadFilter{ProjectID: "p1", IncludeArchived: true, IncludeDeleted: true}, []projection.Thread{live, arch, del, both}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Threads(t.Context(), tc.f)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestThread(t *testing.T) {
	t.Parallel()
	user, assistant := orchestration.RoleUser, orchestration.RoleAssistant
	r := setup(t,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "T", Model: "m", At: at(1)},                                            // 2
		orchestration.ThreadCreated{ThreadID: "empty", ProjectID: "p", Title: "E", Model: "m", At: at(2)},                                        // 3
		orchestration.TurnStarted{ThreadID: "t", TurnID: "z-first", At: at(3)},                                                                   // 4
		orchestration.MessageAdded{ThreadID: "t", TurnID: "z-first", MessageID: "m9", Role: user, Text: "q", At: at(4)},                          // 5
		orchestration.TurnStarted{ThreadID: "t", TurnID: "a-second", At: at(5)},                                                                  // 6: ordinal, not id, orders turns
		orchestration.MessageAdded{ThreadID: "t", TurnID: "z-first", MessageID: "m1", Role: assistant, Text: "late", Streaming: true, At: at(6)}, // 7
		orchestration.MessageDelta{ThreadID: "t", TurnID: "z-first", MessageID: "m1", Delta: "r", At: at(7)},                                     // 8
		orchestration.TurnFailed{ThreadID: "t", TurnID: "a-second", Error: "boom", At: at(8)},                                                    // 9
		orchestration.CheckpointCreated{ThreadID: "t", TurnID: "z-first", GitRef: "c1", Message: "one", At: at(9)},                               // 10
	)

	t.Run("TurnsInOrderWithTheirMessages", func(t *testing.T) {
		d, err := r.Thread(t.Context(), "t")
		require.NoError(t, err)
		require.Equal(t, projection.ThreadDetail{
			Thread: projection.Thread{ID: "t", ProjectID: "p", Title: "T", Model: "m", Status: "idle",
				TurnCount: 2, MessageCount: 2, LatestTurnID: "a-second", CreatedAt: at(1), UpdatedAt: at(8), LastSequence: 9},
			Turns: []projection.Turn{
				{ID: "z-first", ThreadID: "t", Ordinal: 1, Status: "running", CheckpointRef: "c1", StartedAt: at(3), LastSequence: 10,
					Messages: []projection.Message{
						{ID: "m9", ThreadID: "t", TurnID: "z-first", Role: "user", Text: "q", CreatedAt: at(4), UpdatedAt: at(4), LastSequence: 5},
						{ID: "m1", ThreadID: "t", TurnID: "z-first", Role: "assistant", Text: "later", Streaming: true, CreatedAt: at(6), UpdatedAt: at(7), LastSequence: 8},
					}},
				{ID: "a-second", ThreadID: "t", Ordinal: 2, Status: "failed", Error: "boom", StartedAt: at(5), EndedAt: ptr(8), LastSequence: 9,
					Messages: []projection.Message{}},
			},
			Checkpoints: []projection.Checkpoint{
				{ThreadID: "t", TurnID: "z-first", GitRef: "c1", Message: "one", CreatedAt: at(9), LastSequence: 10},
			},
		}, d)
	})

	t.Run("NoTurns", func(t *testing.T) {
		d, err := r.Thread(t.Context(), "empty")
		require.NoError(t, err)
		require.Equal(t, "E", d.Title)
		require.NotNil(t, d.Turns, "a thread without turns has an empty list, not null in JSON")
		require.Empty(t, d.Turns)
		require.Empty(t, d.Checkpoints)
	})

	t.Run("MissingIsErrNotFound", func(t *testing.T) {
		_, err := r.Thread(t.Context(), "nope")
		require.ErrorIs(t, err, projection.ErrNotFound)
		require.EqualError(t, err, "thread nope: not found")
	})
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	r := setup(t,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "t", ProjectID: "p", Title: "T", Model: "m", At: at(0)},
		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "T2", Model: "m", At: at(0)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u1", At: at(1)},
		orchestration.TurnCompleted{ThreadID: "t", TurnID: "u1", At: at(2)},
		orchestration.TurnStarted{ThreadID: "t", TurnID: "u2", At: at(3)},
		orchestration.TurnCompleted{ThreadID: "t", TurnID: "u2", At: at(4)},
		orchestration.TurnStarted{ThreadID: "t2", TurnID: "v1", At: at(1)},
		// u2's checkpoint is taken at the same time as u1's, later in the log.
		orchestration.CheckpointCreated{ThreadID: "t", TurnID: "u1", GitRef: "c1", Message: "one", At: at(5)}, // 9
		orchestration.CheckpointCreated{ThreadID: "t", TurnID: "u2", GitRef: "c2", Message: "two", At: at(5)}, // 10
		orchestration.CheckpointCreated{ThreadID: "t2", TurnID: "v1", GitRef: "c9", Message: "other", At: at(0)},
		orchestration.CheckpointReverted{ThreadID: "t", GitRef: "c1", At: at(6)}, // 12
	)
	got, err := r.Checkpoints(t.Context(), "t")
	require.NoError(t, err)
	require.Equal(t, []projection.Checkpoint{
		{ThreadID: "t", TurnID: "u1", GitRef: "c1", Message: "one", CreatedAt: at(5), LastSequence: 9},
		{ThreadID: "t", TurnID: "u2", GitRef: "c2", Message: "two", CreatedAt: at(5), RevertedAt: ptr(6), LastSequence: 12},
	}, got)

	none, err := r.Checkpoints(t.Context(), "nope")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestSettings(t *testing.T) {
	t.Parallel()
	r := setup(t,
		orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`"light"`), At: at(1)},
		orchestration.SettingChanged{Key: "agent.model", Value: json.RawMessage(`{"name":"gpt-5","temperature":0.2}`), At: at(2)},
		orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`"dark"`), At: at(3)},
		orchestration.SettingChanged{Key: "agent.retries", Value: json.RawMessage(`3`), At: at(4)},
	)
	got, err := r.Settings(t.Context())
	require.NoError(t, err)
	require.Equal(t, []projection.Setting{
		{Key: "agent.model", Value: json.RawMessage(`{"name":"gpt-5","temperature":0.2}`), UpdatedAt: at(2), LastSequence: 2},
		{Key: "agent.retries", Value: json.RawMessage(`3`), UpdatedAt: at(4), LastSequence: 4},
		{Key: "ui.theme", Value: json.RawMessage(`"dark"`), UpdatedAt: at(3), LastSequence: 3},
	}, got)
}

// The read models hold times in UTC, whatever zone the events carried.
func TestTimesAreUTC(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("UTC+5", 5*3600)
	r := setup(t,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: at(1).In(zone)},
		orchestration.ProjectDeleted{ProjectID: "p", At: at(2).In(zone)},
	)
	got, err := r.Projects(t.Context(), &projection.ProjectFilter{IncludeDeleted: true})
	require.NoError(t, err)
	require.Len(t, got, 1)
	for _, tm := range []time.Time{got[0].CreatedAt, got[0].UpdatedAt, *got[0].DeletedAt} {
		require.Equal(t, time.UTC, tm.Location())
	}
	require.Equal(t, at(1), got[0].CreatedAt)
	require.Equal(t, at(2), *got[0].DeletedAt)
}
