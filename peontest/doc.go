// Package peontest opens stores for the tests of applications built on
// package persistence, as entgo.io/ent/enttest opens ent clients.
//
// Open returns a private in-memory SQLite store, migrated with the real
// migrations and empty, that is closed when the test ends (t.Cleanup);
// an error of opening fails the test at once (t.Fatalf):
//
//	func TestRenameThread(t *testing.T) {
//		t.Parallel()
//		store := peontest.Open(t)
//		_, err := store.Append(t.Context(), nil,
//			orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: now},
//			orchestration.ThreadCreated{ThreadID: "t1", ProjectID: "p1", Title: "Fix CI", Model: "gpt-5", At: now},
//			orchestration.ThreadRenamed{ThreadID: "t1", Title: "Fix the CI", At: now})
//		require.NoError(t, err)
//		th, err := projection.NewReader(store).Thread(t.Context(), "t1")
//		require.NoError(t, err)
//		require.Equal(t, "Fix the CI", th.Title)
//	}
//
// Each call opens a store of its own, so parallel tests share nothing.
// The package imports only persistence and the standard library.
package peontest
