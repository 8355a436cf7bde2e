package cli

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// TestFollowThroughDisruptions: `events --follow` keeps following when
// the database fails its reads for a moment, again and again, while
// another store appends: it prints every event exactly once and in order,
// and notes each failed read on stderr. Before, it exited at the first
// one (on PostgreSQL with `FATAL: terminating connection due to
// administrator command`).
func TestFollowThroughDisruptions(t *testing.T) {
	t.Parallel()

	// The server ends every connection of the store (and of the writer,
	// which sends its batch again).
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, db: dbtest.NamedPostgresSchema(t), vars: map[string]string{}}
		followThroughDisruptions(t, e, func() { dbtest.TerminateBackends(t, e.db) })
	})

	// SQLite has no connection to end: the events table is renamed away
	// for 100 ms, so every read of it fails meanwhile.
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		followThroughDisruptions(t, e, func() {
			db, err := sql.Open("sqlite", e.db+"?_pragma=busy_timeout(10000)")
			require.NoError(t, err)
			defer db.Close()
			_, err = db.Exec("ALTER TABLE events RENAME TO events_away")
			require.NoError(t, err)
			time.Sleep(100 * time.Millisecond)
			_, err = db.Exec("ALTER TABLE events_away RENAME TO events")
			require.NoError(t, err)
		})
	})
}

// retryNote is the line `events --follow` writes for a failed read.
var retryNote = regexp.MustCompile(`^peon-store: events --follow: .+; retrying in \S+ \(attempt \d+\)$`)

func followThroughDisruptions(t *testing.T, e *env, disrupt func()) {
	const disruptions = 4
	e.ok("migrate")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
		done <- a.run(ctx, []string{"--db", e.db, "events", "--follow", "--json"})
	}()

	writer, err := persistence.Open(t.Context(), e.db)
	require.NoError(t, err)
	defer writer.Close()
	var written atomic.Int64
	stop, werr := make(chan struct{}), make(chan error, 1)
	go func() {
		for b := 0; ; b++ {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			opts := &persistence.AppendOpts{CommandID: fmt.Sprint("follow-", b)}
			evs := []orchestration.Event{orchestration.ThreadRenamed{ThreadID: fmt.Sprint("t", b%3), Title: fmt.Sprint(b), At: time.Unix(int64(b), 0).UTC()}}
			for {
				if _, err := writer.Append(t.Context(), opts, evs...); err == nil {
					break
				} else if t.Context().Err() != nil {
					werr <- err
					return
				}
				time.Sleep(5 * time.Millisecond) // disrupted: the same command again
			}
			written.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	notes := func() int { return strings.Count(errOut.String(), "\n") }
	for i := range disruptions {
		from := written.Load()
		require.Eventually(t, func() bool { return written.Load() >= from+10 }, 30*time.Second, time.Millisecond,
			"disruption %d: the writer is stuck", i)
		before := notes()
		for try := 0; notes() == before; try++ {
			// A read may also get around a disruption without an error
			// (database/sql drops a connection that fails pgx's ping).
			require.Less(t, try, 10, "disruption %d: no note on stderr %q", i, errOut.String())
			disrupt()
			deadline := time.Now().Add(time.Second)
			for notes() == before && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		select {
		case code := <-done:
			t.Fatalf("events --follow exited with %d; stderr %q", code, errOut.String())
		default:
		}
	}
	close(stop)
	require.NoError(t, <-werr)
	head, err := writer.Head(t.Context())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), fmt.Sprintf(`{"sequence":%d,`, head)) }, 30*time.Second, 5*time.Millisecond,
		"the last event, %d, was not printed", head)
	cancel()
	select {
	case code := <-done:
		require.Equal(t, ExitOK, code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not stop when its context ended")
	}

	type line struct {
		Sequence int64  `json:"sequence"`
		EventID  string `json:"event_id"`
	}
	var ids []string
	for i, l := range jsonLines[line](t, out.String()) {
		require.Equal(t, int64(i+1), l.Sequence, "every event once, in order")
		ids = append(ids, l.EventID)
	}
	require.Len(t, ids, int(head))
	var logIDs []string
	for rec, err := range writer.ReplayAll(t.Context()) {
		require.NoError(t, err)
		logIDs = append(logIDs, rec.EventID)
	}
	require.Equal(t, logIDs, ids)
	for _, n := range strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n") {
		require.Regexp(t, retryNote, n)
	}
	t.Logf("%d events; %d notes, the first: %s", head, notes(), strings.SplitN(errOut.String(), "\n", 2)[0])
}
