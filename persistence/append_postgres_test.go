package persistence_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// flightCounter is a TCP proxy in front of the PostgreSQL server that
// counts round trips: on each connection, every time the client sends
// after the server last spoke (or first), the client is starting a new
// exchange it will wait on. A pipeline of statements sent together is one
// round trip, as it costs one.
type flightCounter struct {
	mu      sync.Mutex
	flights int
}

// proxy starts a flightCounter for the server of dsn and returns dsn
// pointed at it.
func proxy(t *testing.T, dsn string) (*flightCounter, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fc := &flightCounter{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			wg.Go(func() { fc.serve(client, server) })
		}
	})
	u.Host = ln.Addr().String()
	return fc, u.String()
}

// serve copies between client and server until either side closes,
// counting the client's flights.
func (fc *flightCounter) serve(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	var (
		mu         sync.Mutex
		clientLast bool // the last bytes on this connection were the client's
	)
	pump := func(dst, src net.Conn, fromClient bool) {
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				mu.Lock()
				if fromClient && !clientLast {
					fc.mu.Lock()
					fc.flights++
					fc.mu.Unlock()
				}
				clientLast = fromClient
				mu.Unlock()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					return
				}
				return
			}
		}
	}
	done := make(chan struct{}, 2)
	go func() { pump(server, client, true); server.Close(); done <- struct{}{} }()
	go func() { pump(client, server, false); client.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// count returns the round trips so far.
func (fc *flightCounter) count() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.flights
}

// roundTrips runs fn and returns the round trips it cost. Other traffic
// through the proxy (the store's listener connecting, pgx pinging a
// connection idle for over a second, a batch the kernel split while the
// server already answered its start) can only add to the count, never
// take from it: tests take the least of a few tries.
func (fc *flightCounter) roundTrips(fn func()) int {
	before := fc.count()
	fn()
	return fc.count() - before
}

// TestPostgresAppendRoundTrips counts the round trips of a single-event
// Append on PostgreSQL once the statements are prepared: two on a bare
// log (BEGIN, lock and head read; INSERT with notify and COMMIT), where
// the statements one at a time took six. With projections, statements
// whose result is not read go with the COMMIT: an event that reads
// nothing costs two as well, and one more per read (see
// projectedRoundTrips).
func TestPostgresAppendRoundTrips(t *testing.T) {
	t.Parallel()
	fc, dsn := proxy(t, dbtest.PostgresSchema(t))
	ctx := t.Context()
	evs := persistencetest.Catalogue()
	for _, tc := range []struct {
		name string
		bare bool
		// plain, with a new command, with a stored command, conflicting;
		// -1 is not checked
		want [4]int
	}{
		{"Bare", true, [4]int{2, 2, 3, 2}},
		// The projection reads nothing (thread.created checks its
		// project inside its INSERT): its statements go with the COMMIT.
		// An append that writes nothing projects nothing.
		{"Projected", false, [4]int{2, 2, 3, 2}},
	} {
		s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: tc.bare})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		append1 := func(opts *persistence.AppendOpts, e orchestration.Event) error {
			_, err := s.Append(ctx, opts, e)
			return err
		}
		cmd := func(id string) *persistence.AppendOpts {
			return &persistence.AppendOpts{CommandID: tc.name + id}
		}
		// Warm up: pgx prepares each statement on its first use.
		for i := range 3 {
			require.NoError(t, append1(cmd(fmt.Sprint("warm", i)), evs[0]))
			require.NoError(t, append1(cmd(fmt.Sprint("warm", i)), evs[0]))
			require.NoError(t, append1(nil, evs[1]))
			require.NoError(t, append1(nil, evs[2]))
		}
		// The least of three tries (see roundTrips).
		got := [4]int{math.MaxInt, math.MaxInt, math.MaxInt, math.MaxInt}
		for try := range 3 {
			var n [4]int
			n[0] = fc.roundTrips(func() { err = append1(nil, evs[2]) })
			require.NoError(t, err)
			n[1] = fc.roundTrips(func() { err = append1(cmd(fmt.Sprint("c", try)), evs[3]) })
			require.NoError(t, err)
			n[2] = fc.roundTrips(func() { err = append1(cmd(fmt.Sprint("c", try)), evs[3]) })
			require.NoError(t, err)
			n[3] = fc.roundTrips(func() {
				err = append1(&persistence.AppendOpts{ExpectedVersions: map[string]int64{evs[4].StreamID(): 1000}}, evs[4])
			})
			require.ErrorIs(t, err, persistence.ErrVersionConflict)
			for i := range got {
				got[i] = min(got[i], n[i])
			}
		}
		t.Logf("%s: round trips of a plain append, a new command, a stored command, a conflict: %v", tc.name, got)
		require.Equal(t, tc.want, got, "%s: round trips of a plain append, a new command, a stored command, a conflict", tc.name)
	}
}

// TestPostgresProjectedAppendRoundTrips counts the round trips of a
// projected Append of one event of each type, and of a run of deltas,
// once their statements are prepared. Before the projection statements
// were pipelined, each cost one more (and the COMMIT one): 5 for a
// message.delta, 7 for a message.added; before parent checks moved into
// the statements, 3 or 4 for an event with a parent.
func TestPostgresProjectedAppendRoundTrips(t *testing.T) {
	t.Parallel()
	fc, dsn := proxy(t, dbtest.PostgresSchema(t))
	ctx := t.Context()
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	at := persistencetest.T0
	type step struct {
		evs  []orchestration.Event
		want int
	}
	one := func(ev orchestration.Event, want int) step { return step{[]orchestration.Event{ev}, want} }
	// session is one of each event, in round r; want is 2 (BEGIN, lock
	// and head read; the rest and COMMIT) for every one: the projection
	// reads no result (parent lookups, row counts and a revert's ordinal
	// are inside its statements), so all of them go with the COMMIT.
	session := func(r int) []step {
		p, th, u, u2, m := fmt.Sprint("p", r), fmt.Sprint("t", r), fmt.Sprint("u", r), fmt.Sprint("v", r), fmt.Sprint("m", r)
		ref := "refs/peon/" + u
		delta := orchestration.MessageDelta{ThreadID: th, TurnID: u, MessageID: m, Delta: "tok ", At: at}
		deltas := make([]orchestration.Event, 10)
		for i := range deltas {
			deltas[i] = delta
		}
		// Ten message.added of ten turns, enough for the Applier to look
		// their turns up at once (turns that do not exist; and with ten
		// more of turn u, which exists): the look-up goes with the head
		// read.
		added := func(turn string) []orchestration.Event {
			evs := make([]orchestration.Event, 10)
			for i := range evs {
				evs[i] = orchestration.MessageAdded{ThreadID: th, TurnID: fmt.Sprint(turn, i%10), MessageID: fmt.Sprint(m, turn, i), Role: orchestration.RoleUser, Text: "hi", At: at}
			}
			return evs
		}
		known := added("x") // and as many of turn u, which exists
		for i := range 10 {
			known = append(known, orchestration.MessageAdded{ThreadID: th, TurnID: u, MessageID: fmt.Sprint(m, "u", i), Role: orchestration.RoleUser, Text: "hi", At: at})
		}
		return []step{
			one(orchestration.ProjectCreated{ProjectID: p, Name: "peon", WorkspaceRoot: "/src", At: at}, 2),
			one(orchestration.ProjectRenamed{ProjectID: p, Name: "peon2", At: at}, 2),
			one(orchestration.ThreadCreated{ThreadID: th, ProjectID: p, Title: "x", Model: "m", At: at}, 2),
			one(orchestration.ThreadRenamed{ThreadID: th, Title: "y", At: at}, 2),
			one(orchestration.TurnStarted{ThreadID: th, TurnID: u, At: at}, 2),
			one(orchestration.MessageAdded{ThreadID: th, TurnID: u, MessageID: m, Role: orchestration.RoleAssistant, Streaming: true, At: at}, 2),
			one(delta, 2),
			{deltas, 2},
			one(orchestration.MessageCompleted{ThreadID: th, TurnID: u, MessageID: m, At: at}, 2),
			{known, 2},
			{added("gone"), 2},
			one(orchestration.TurnCompleted{ThreadID: th, TurnID: u, At: at}, 2),
			one(orchestration.CheckpointCreated{ThreadID: th, TurnID: u, GitRef: ref, Message: "c", At: at}, 2),
			one(orchestration.TurnStarted{ThreadID: th, TurnID: u2, At: at}, 2),
			one(orchestration.TurnFailed{ThreadID: th, TurnID: u2, Error: "e", At: at}, 2),
			one(orchestration.CheckpointReverted{ThreadID: th, GitRef: ref, At: at}, 2),
			one(orchestration.SettingChanged{Key: "k", Value: []byte(`1`), At: at}, 2),
			one(orchestration.ThreadArchived{ThreadID: th, At: at}, 2),
			one(orchestration.ThreadDeleted{ThreadID: th, At: at}, 2),
			one(orchestration.ProjectDeleted{ProjectID: p, At: at}, 2),
		}
	}
	// Each step's count is the least over three measured sessions (see
	// roundTrips).
	least := map[int]int{}
	run := func(r int, measure bool) {
		for i, st := range session(r) {
			got := fc.roundTrips(func() { _, err = s.Append(ctx, nil, st.evs...) })
			require.NoError(t, err)
			if measure {
				if old, ok := least[i]; !ok || got < old {
					least[i] = got
				}
			}
		}
	}
	// Warm up: pgx prepares each statement on its first use.
	run(0, false)
	run(1, false)
	for r := 2; r < 5; r++ {
		run(r, true)
	}
	for i, st := range session(0) {
		name := st.evs[0].EventType()
		if len(st.evs) > 1 {
			name = fmt.Sprintf("%d × %s", len(st.evs), name)
		}
		t.Logf("%s: %d round trips", name, least[i])
		require.Equal(t, st.want, least[i], "round trips of %s", name)
	}

	// The pipelined projection left the tables as a rebuild makes them.
	report, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
}

// appendWaiters counts the appenders waiting for the append lock of the
// events table of s's schema.
func appendWaiters(t *testing.T, s *persistence.Store) int {
	t.Helper()
	var n int
	queryOne(t, s.Client(), "SELECT count(*) FROM pg_locks "+
		"WHERE locktype = 'advisory' AND classid = 1885695854 AND objid = 'events'::regclass::oid AND NOT granted", nil, &n)
	return n
}

// queryOne runs query in q and scans its one row into dest.
func queryOne(t *testing.T, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args []any, dest ...any) {
	t.Helper()
	rows, err := q.QueryContext(t.Context(), query, args...)
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next(), "no row: %v", rows.Err())
	require.NoError(t, rows.Scan(dest...))
	require.NoError(t, rows.Close())
}

// TestPostgresAppendReadsAfterTheLock holds the append lock in an AppendTx
// while an Append waits for it, then commits: the Append must read the
// head and the stream's version as they are after that commit, not as
// they were when it started waiting. It would fail if the reads shared a
// statement, and so a snapshot, with the lock, or ran under the
// snapshot of a REPEATABLE READ or SERIALIZABLE transaction: the session
// default is SERIALIZABLE here, which Append must not inherit.
func TestPostgresAppendReadsAfterTheLock(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("default_transaction_isolation", "serializable")
	u.RawQuery = q.Encode()
	s, err := persistence.Open(t.Context(), u.String())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	evs := persistencetest.Catalogue() // 0 and 1 are both in project:p1

	holder, err := s.Client().BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, holder, nil, evs[0])
	require.NoError(t, err)

	type result struct {
		recs []persistence.Recorded
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := s.Append(ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{evs[1].StreamID(): 1}}, evs[1])
		done <- result{recs, err}
	}()
	require.Eventually(t, func() bool { return appendWaiters(t, s) == 1 }, 10*time.Second, 5*time.Millisecond,
		"the Append never waited for the lock")
	require.NoError(t, holder.Commit())
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, int64(2), r.recs[0].Sequence)
	require.Equal(t, int64(2), r.recs[0].StreamVersion)
}

// TestPostgresAppendTxRefusesIsolation gives AppendTx transactions of
// each isolation level: REPEATABLE READ and SERIALIZABLE are refused with
// ErrTxIsolation before the lock is taken or anything written, and leave
// the caller's transaction usable; READ COMMITTED and READ UNCOMMITTED
// (which PostgreSQL runs as READ COMMITTED) append.
func TestPostgresAppendTxRefusesIsolation(t *testing.T) {
	t.Parallel()
	s, err := persistence.Open(t.Context(), dbtest.PostgresSchema(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	evs := persistencetest.Catalogue()
	advisoryLocks := func(tx *ent.Tx) int {
		var n int
		queryOne(t, tx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", nil, &n)
		return n
	}
	for _, level := range []sql.IsolationLevel{sql.LevelRepeatableRead, sql.LevelSerializable} {
		tx, err := s.Client().BeginTx(ctx, &sql.TxOptions{Isolation: level})
		require.NoError(t, err)
		_, err = s.AppendTx(ctx, tx, nil, evs[0])
		require.ErrorIs(t, err, persistence.ErrTxIsolation, level.String())
		require.ErrorContains(t, err, strings.ToUpper(level.String()))
		// The caller's transaction goes on (an aborted one would refuse
		// this query), without the append lock.
		require.Zero(t, advisoryLocks(tx), "%s: the append lock was taken", level)
		require.NoError(t, tx.Commit())
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)

	for i, level := range []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadCommitted, sql.LevelReadUncommitted} {
		tx, err := s.Client().BeginTx(ctx, &sql.TxOptions{Isolation: level})
		require.NoError(t, err)
		recs, err := s.AppendTx(ctx, tx, nil, evs[i])
		require.NoError(t, err, level.String())
		require.NoError(t, tx.Commit())
		require.Equal(t, int64(i+1), recs[0].Sequence)
	}
}

// TestPostgresAppendNotifies listens on the store's channel: an Append
// and a committed AppendTx, of several INSERTs each, notify once, with
// their head, and an AppendTx rolled back notifies nothing. The channel is
// the events table's: appends to a store in another schema of the same
// database are not heard.
func TestPostgresAppendNotifies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := dbtest.PostgresSchema(t)
	s, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	other, err := persistence.OpenWith(ctx, dbtest.PostgresSchema(t), &persistence.Options{NoProjections: true})
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })

	l, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close(context.Background()) })
	var channel string
	require.NoError(t, l.QueryRow(ctx, "SELECT 'peon_events_' || 'events'::regclass::oid").Scan(&channel))
	_, err = l.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	next := func() string {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := l.WaitForNotification(wctx)
		require.NoError(t, err)
		require.Equal(t, channel, n.Channel)
		return n.Payload
	}

	_, err = s.Append(ctx, nil, pgBenchEvents("th1", 1201)...) // 3 INSERTs
	require.NoError(t, err)
	require.Equal(t, "1201", next())

	tx, err := s.Client().Tx(ctx)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, nil, pgBenchEvents("th2", 1)...)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())

	// Another schema's appends commit first and are not heard.
	_, err = other.Append(ctx, nil, pgBenchEvents("th9", 7)...)
	require.NoError(t, err)

	tx, err = s.Client().Tx(ctx)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, nil, pgBenchEvents("th3", 1202)...) // 3 INSERTs
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, "2403", next(), "the rolled-back AppendTx or another schema's Append notified")
}

// TestPostgresAppendCanceledWhileWaiting cancels an Append that waits for
// the append lock: it returns the context's error, writes nothing, and
// leaves no connection in a transaction; the next Append goes on from
// the holder's commit.
func TestPostgresAppendCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	app := q.Get("search_path")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s, err := persistence.Open(t.Context(), u.String())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	evs := persistencetest.Catalogue()

	holder, err := s.Client().Tx(ctx)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, holder, nil, evs[0])
	require.NoError(t, err)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(actx, nil, evs[1])
		done <- err
	}()
	require.Eventually(t, func() bool { return appendWaiters(t, s) == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, holder.Commit())

	recs, err := s.Append(ctx, nil, evs[2])
	require.NoError(t, err)
	require.Equal(t, int64(2), recs[0].Sequence)
	// The canceled Append's connection was discarded, not pooled; its
	// server process may still show its aborted transaction for the
	// moment it takes to notice the disconnect, so wait for it to go.
	require.Eventually(t, func() bool {
		var inTx int
		queryOne(t, s.Client(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
			[]any{app}, &inTx)
		return inTx == 0
	}, 10*time.Second, 20*time.Millisecond, "a connection stays in a transaction")
}

// TestPostgresProjectionFailsInPipeline makes projection statements fail
// through CHECK constraints added to the projection tables: a deferred
// one that fails in the COMMIT's pipeline, a deferred one whose error
// comes back with a later read, and one whose row count is read. Each
// append fails naming the failing event, writes no event and changes no
// projection row, and the next append goes on.
func TestPostgresProjectionFailsInPipeline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := persistence.Open(ctx, dbtest.PostgresSchema(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.Append(ctx, nil, persistencetest.Deltas("t1", 1)...)
	require.NoError(t, err) // turn, message, 1 delta; thread t1 is not projected (no project)
	_, err = s.Append(ctx, nil,
		orchestration.ProjectCreated{ProjectID: "p", Name: "p", WorkspaceRoot: "/p", At: persistencetest.T0},
		orchestration.ThreadCreated{ThreadID: "t2", ProjectID: "p", Title: "t", Model: "m", At: persistencetest.T0},
		orchestration.TurnStarted{ThreadID: "t2", TurnID: "u2", At: persistencetest.T0},
		orchestration.MessageAdded{ThreadID: "t2", TurnID: "u2", MessageID: "m2", Role: orchestration.RoleAssistant, Streaming: true, At: persistencetest.T0})
	require.NoError(t, err)
	for _, c := range []string{
		"ALTER TABLE projection_messages ADD CONSTRAINT no_boom CHECK (text NOT LIKE '%BOOM%')",
		"ALTER TABLE projection_messages ADD CONSTRAINT no_bad CHECK (message_id <> 'bad')",
	} {
		_, err = s.Client().ExecContext(ctx, c)
		require.NoError(t, err)
	}
	// dump is every projection table and projection_state, as text.
	dump := func() string {
		var sb strings.Builder
		for _, tbl := range []string{"projection_projects", "projection_threads", "projection_turns",
			"projection_messages", "checkpoints", "settings", "projection_state"} {
			var rows sql.NullString
			queryOne(t, s.Client(), "SELECT json_agg(x ORDER BY x::text)::text FROM "+tbl+" x", nil, &rows)
			sb.WriteString(tbl + ": " + rows.String + "\n")
		}
		return sb.String()
	}
	boom := orchestration.MessageDelta{ThreadID: "t2", TurnID: "u2", MessageID: "m2", Delta: "BOOM", At: persistencetest.T0}
	ok := orchestration.MessageDelta{ThreadID: "t2", TurnID: "u2", MessageID: "m2", Delta: "fine ", At: persistencetest.T0}
	// A delta writes nothing; the completion that folds boom fails.
	done := orchestration.MessageCompleted{ThreadID: "t2", TurnID: "u2", MessageID: "m2", At: persistencetest.T0}
	for _, tc := range []struct {
		name string
		evs  []orchestration.Event
		want string // in the error
	}{
		{"deferred, failing with the COMMIT", []orchestration.Event{ok, boom, done}, "apply 10 (message.completed): "},
		{"deferred, a completion before a message", []orchestration.Event{boom, done,
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "u2", MessageID: "m3", Role: orchestration.RoleUser, Text: "q", At: persistencetest.T0}},
			"apply 9 (message.completed): "},
		{"deferred, a message after a delta", []orchestration.Event{ok,
			orchestration.MessageAdded{ThreadID: "t2", TurnID: "u2", MessageID: "bad", Role: orchestration.RoleUser, Text: "q", At: persistencetest.T0}},
			"apply 9 (message.added): "},
	} {
		before := dump()
		_, err := s.Append(ctx, nil, tc.evs...)
		require.Error(t, err, tc.name)
		t.Logf("%s: %v", tc.name, err)
		require.True(t, strings.HasPrefix(err.Error(), "append to thread:t2: "+tc.want), "%s: %v", tc.name, err)
		require.ErrorContains(t, err, "violates check constraint", tc.name)
		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(7), head, "%s: an event was stored", tc.name)
		require.Equal(t, before, dump(), "%s: the projection changed", tc.name)
	}
	_, err = s.Append(ctx, nil, ok)
	require.NoError(t, err)
	var text string
	queryOne(t, s.Client(), "SELECT text FROM projection_messages_live WHERE message_id = 'm2'", nil, &text)
	require.Equal(t, "fine ", text)
	report, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
}
