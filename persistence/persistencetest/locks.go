package persistencetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// promptly is how long an open or a read may take while another store
// holds the write lock: far under SQLite's 30 s busy timeout.
const promptly = 5 * time.Second

// holdWriteLock takes the write lock of s's database and holds it until
// the test ends: an AppendTx in a transaction left open, which on SQLite
// began IMMEDIATE and on PostgreSQL holds the append lock.
func holdWriteLock(t *testing.T, s *setup) {
	t.Helper()
	tx, err := s.store.Client().Tx(s.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { tx.Rollback() })
	_, err = s.store.AppendTx(s.ctx, tx, nil, orchestration.SettingChanged{Key: "held", Value: json.RawMessage(`1`), At: T0})
	require.NoError(t, err)
}

func runLocks(t *testing.T, h Harness) {
	// Opening a migrated store whose projections stand at the head reads
	// and takes no write lock, so it does not wait for a writer; nor do
	// reads.
	t.Run("OpenAndReadWhileAnotherHoldsTheWriteLock", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store has no other store")
		}
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		holdWriteLock(t, s)

		ctx, cancel := context.WithTimeout(s.ctx, promptly)
		defer cancel()
		start := time.Now()
		other, err := persistence.Open(ctx, s.dsn)
		require.NoError(t, err, "open beside a held write lock")
		defer other.Close()
		head, err := other.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(len(Catalogue())), head)
		require.Len(t, collect(t, other.ReplayAll(ctx)), len(Catalogue()))
		views := readViews(t, &setup{ctx: ctx, store: other, dsn: s.dsn, h: h})
		require.NotEmpty(t, views.Threads)
		t.Logf("open and read beside a held write lock: %s", time.Since(start).Round(time.Millisecond))

		ro, err := persistence.OpenWith(ctx, s.dsn, &persistence.Options{ReadOnly: true})
		require.NoError(t, err, "read-only open beside a held write lock")
		defer ro.Close()
		rep, err := ro.Verify(ctx)
		require.NoError(t, err, "verify beside a held write lock")
		require.True(t, rep.OK(), "verify: %v", rep.Problems)

	})

	// An import reads and checks its input without the write lock: while
	// its input stalls, another store opens and appends; when the input
	// goes on, the import finds the store changed and writes nothing.
	t.Run("StalledImportLetsOthersWrite", func(t *testing.T) {
		if !h.Durable {
			t.Skip("a private in-memory store has no other store")
		}
		t.Parallel()
		for _, force := range []bool{false, true} {
			s := h.setup(t)
			want, skip := persistence.ErrNotEmpty, int64(0)
			if force {
				_, err := s.store.Append(s.ctx, nil, Catalogue()...)
				require.NoError(t, err)
				want, skip = persistence.ErrStoreChanged, int64(len(Catalogue()))
			}
			lines := exportAfter(t, h, skip, force)
			pr, pw := io.Pipe()
			imported := make(chan error, 1)
			go func() {
				_, err := s.store.Import(s.ctx, pr, &persistence.ImportOpts{Force: force})
				imported <- err
			}()
			// Write returns once the import has read the lines: it has
			// staged two chunks and waits for more.
			_, err := io.WriteString(pw, strings.Join(lines[:1100], ""))
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(s.ctx, promptly)
			other, err := persistence.Open(ctx, s.dsn)
			require.NoError(t, err, "open beside a stalled import")
			_, err = other.Append(ctx, nil, orchestration.SettingChanged{Key: "during", Value: json.RawMessage(`1`), At: T0})
			require.NoError(t, err, "append beside a stalled import")
			cancel()
			head, err := other.Head(s.ctx)
			require.NoError(t, err)

			_, err = io.WriteString(pw, strings.Join(lines[1100:], ""))
			require.NoError(t, err)
			require.NoError(t, pw.Close())
			err = <-imported
			require.ErrorIs(t, err, want)
			if !force {
				require.ErrorContains(t, err, "another writer appended events 1 to 1 while the import was read")
			}
			after, err := other.Head(s.ctx)
			require.NoError(t, err)
			require.Equal(t, head, after, "the refused import wrote events")
			requireVerified(t, s)
			require.NoError(t, other.Close())
		}
	})

	// On a private in-memory store (one connection, one process), an
	// append waits for an import in progress instead of deadlocking with
	// it, and lands after it.
	t.Run("InMemoryAppendWaitsForTheImport", func(t *testing.T) {
		if h.Durable {
			t.Skip("for a private in-memory store")
		}
		t.Parallel()
		s := h.setup(t)
		lines := exportAfter(t, h, 0, false)
		pr, pw := io.Pipe()
		imported, appended := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := s.store.Import(s.ctx, pr, nil)
			imported <- err
		}()
		_, err := io.WriteString(pw, strings.Join(lines[:700], ""))
		require.NoError(t, err)
		go func() {
			_, err := s.store.Append(s.ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`1`), At: T0})
			appended <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the append wait
		_, err = io.WriteString(pw, strings.Join(lines[700:], ""))
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		for _, ch := range []chan error{imported, appended} {
			select {
			case err := <-ch:
				require.NoError(t, err)
			case <-time.After(promptly):
				t.Fatal("the import and the append deadlocked")
			}
		}
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(len(lines)+1), head)
		requireVerified(t, s)
	})

	// A stalled import ends when its context does, and writes nothing.
	t.Run("CancelledImportWritesNothing", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		lines := exportAfter(t, h, 0, false)
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(s.ctx)
		imported := make(chan error, 1)
		go func() {
			_, err := s.store.Import(ctx, pr, nil)
			imported <- err
		}()
		_, err := io.WriteString(pw, strings.Join(lines[:700], ""))
		require.NoError(t, err)
		defer pw.Close()
		cancel()
		select {
		case err := <-imported:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(promptly):
			t.Fatal("the import went on waiting for its input after its context ended")
		}
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Zero(t, head)
		requireVerified(t, s)
	})

	// An import with Force into a store that holds events, failing at any
	// point (a bad line after two staged chunks, the end of its context,
	// an event id the store holds, which fails the final INSERT), leaves
	// the log, the projections and their state as they were; the same
	// import, whole, then gives the projections a rebuild gives.
	t.Run("FailedImportLeavesTheStoreAsItWas", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		stored, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		lines := exportAfter(t, h, int64(len(Catalogue())), true)
		require.Greater(t, len(lines), 1100)
		snapshot := func() (string, views) {
			var b bytes.Buffer
			_, err := s.store.Export(s.ctx, &b, nil)
			require.NoError(t, err)
			return b.String(), readViews(t, s)
		}
		wantLog, wantViews := snapshot()

		bad := append([]string(nil), lines...)
		bad[1050] = "{not json\n"
		dup := append([]string(nil), lines...)
		dup[700] = strings.Replace(dup[700], eventID(t, dup[700]), stored[3].EventID, 1)
		type failure struct {
			name  string
			input []string
			ctx   func() (context.Context, persistence.Progress)
			check func(t *testing.T, err error)
		}
		for _, f := range []failure{
			{"BadLine", bad, nil, func(t *testing.T, err error) {
				var ie *persistence.ImportError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, 1051, ie.Line)
			}},
			{"DuplicateOfAStoredEventID", dup, nil, func(t *testing.T, err error) {
				require.ErrorContains(t, err, "import: insert events")
			}},
			{"Cancelled", lines, func() (context.Context, persistence.Progress) {
				ctx, cancel := context.WithCancel(s.ctx)
				return ctx, func(n, _ int64) {
					if n >= 1000 {
						cancel()
					}
				}
			}, func(t *testing.T, err error) { require.ErrorIs(t, err, context.Canceled) }},
		} {
			ctx, progress := s.ctx, persistence.Progress(func(int64, int64) {})
			if f.ctx != nil {
				ctx, progress = f.ctx()
			}
			_, err := s.store.Import(ctx, strings.NewReader(strings.Join(f.input, "")), &persistence.ImportOpts{Force: true, Progress: progress})
			require.Error(t, err, f.name)
			f.check(t, err)
			gotLog, gotViews := snapshot()
			require.Equal(t, wantLog, gotLog, "%s: the log changed", f.name)
			require.Equal(t, wantViews, gotViews, "%s: the projections changed", f.name)
			requireVerified(t, s)
		}

		res, err := s.store.Import(s.ctx, strings.NewReader(strings.Join(lines, "")), &persistence.ImportOpts{Force: true})
		require.NoError(t, err)
		require.Equal(t, int64(len(lines)), res.Events)
		require.Equal(t, res.Events, res.Projected, "projected in the import's transaction")
		requireVerified(t, s)
	})

	// An import into an empty store builds its projections aside and
	// swaps them in: they equal the source's, and a rebuild.
	t.Run("ImportIntoAnEmptyStoreProjects", func(t *testing.T) {
		t.Parallel()
		src := h.setup(t)
		_, err := src.store.Append(src.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		_, err = src.store.Append(src.ctx, nil, RandomEvents(rand.New(rand.NewPCG(9, 9)), 1500)...)
		require.NoError(t, err)
		var b bytes.Buffer
		_, err = src.store.Export(src.ctx, &b, nil)
		require.NoError(t, err)
		dst := h.setup(t)
		res, err := dst.store.Import(dst.ctx, &b, nil)
		require.NoError(t, err)
		require.Equal(t, res.Events, res.Projected)
		require.Equal(t, readViews(t, src), readViews(t, dst))
		requireVerified(t, dst)
		// Appends after it go to the stored tables.
		_, err = dst.store.Append(dst.ctx, nil, orchestration.SettingChanged{Key: "after", Value: json.RawMessage(`1`), At: T0})
		require.NoError(t, err)
		requireVerified(t, dst)
	})
}

// exportAfter returns, as lines with their newlines, the export of a log
// that holds the catalogue (when withCatalogue) and then a long thread,
// without its first skip events: an import that continues a store holding
// the catalogue, with Force, or into an empty one.
func exportAfter(t *testing.T, h Harness, skip int64, withCatalogue bool) []string {
	t.Helper()
	src := h.setup(t)
	if withCatalogue {
		_, err := src.store.Append(src.ctx, nil, Catalogue()...)
		require.NoError(t, err)
	}
	_, err := src.store.Append(src.ctx, nil, append([]orchestration.Event{
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: T0},
		orchestration.ThreadCreated{ThreadID: "big", ProjectID: "p", Title: "t", Model: "m", At: T0},
	}, Deltas("big", 1300)...)...)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = src.store.Export(src.ctx, &b, nil)
	require.NoError(t, err)
	lines := strings.SplitAfter(b.String(), "\n")
	return lines[skip : len(lines)-1]
}

// eventID returns the event_id of an export line.
func eventID(t *testing.T, line string) string {
	t.Helper()
	var l struct {
		EventID string `json:"event_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &l))
	return l.EventID
}
