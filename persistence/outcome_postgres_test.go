package persistence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// outcomeBatch is append i of an outcome test: a project, a thread in it
// and a setting, all named after i, so the log tells which appends are
// stored.
func outcomeBatch(i int) []orchestration.Event {
	at := persistencetest.T0
	p, th := fmt.Sprintf("p%d", i), fmt.Sprintf("t%d", i)
	return []orchestration.Event{
		orchestration.ProjectCreated{ProjectID: p, Name: p, WorkspaceRoot: "/w", At: at},
		orchestration.ThreadCreated{ThreadID: th, ProjectID: p, Title: th, Model: "m", At: at},
		orchestration.SettingChanged{Key: fmt.Sprintf("s%d", i), Value: json.RawMessage(`1`), At: at},
	}
}

// storedIDs returns the event ids of the log, per append of outcomeBatch.
func storedIDs(t *testing.T, s *persistence.Store) map[int][]string {
	t.Helper()
	ids := map[int][]string{}
	for rec, err := range s.ReplayAll(t.Context()) {
		require.NoError(t, err)
		var i int
		if p, ok := rec.Event.(orchestration.ProjectCreated); ok {
			_, err = fmt.Sscanf(p.ProjectID, "p%d", &i)
		} else if th, ok := rec.Event.(orchestration.ThreadCreated); ok {
			_, err = fmt.Sscanf(th.ThreadID, "t%d", &i)
		} else if st, ok := rec.Event.(orchestration.SettingChanged); ok {
			_, err = fmt.Sscanf(st.Key, "s%d", &i)
		} else {
			continue
		}
		if err == nil {
			ids[i] = append(ids[i], rec.EventID)
		}
	}
	return ids
}

func eventIDs(recs []persistence.Recorded) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.EventID
	}
	return ids
}

// proxiedStore opens a store in a new schema through a pgProxy, and
// another on the same schema that goes to the server directly, and warms
// the first up so that pgx has prepared the append's statements (COMMIT
// among them) on its connections.
func proxiedStore(t *testing.T) (p *pgProxy, s, direct *persistence.Store) {
	t.Helper()
	dsn := dbtest.PostgresSchema(t)
	p, pdsn := newPGProxy(t, dsn)
	var err error
	s, err = persistence.Open(t.Context(), pdsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	direct, err = persistence.Open(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { direct.Close() })
	for i := range 3 {
		_, err := s.Append(t.Context(), nil, outcomeBatch(1000+i)...)
		require.NoError(t, err)
	}
	return p, s, direct
}

// waitTaken waits until the proxy acted on a COMMIT.
func waitTaken(t *testing.T, taken <-chan struct{}) {
	t.Helper()
	select {
	case <-taken:
	case <-time.After(10 * time.Second):
		t.Fatal("no COMMIT went through the proxy")
	}
}

// TestPostgresAppendCommitAnswerLost cuts the connection right after an
// append's COMMIT reached the server, before its answer came back: the
// server commits, and the append must say so (it learns it on another
// connection), with the records it stored, once. Before, it returned the
// connection's error for a batch that was stored.
func TestPostgresAppendCommitAnswerLost(t *testing.T) {
	t.Parallel()
	p, s, direct := proxiedStore(t)
	ctx := t.Context()
	taken := p.arm(commitCut, 0)
	recs, err := s.Append(ctx, nil, outcomeBatch(1)...)
	waitTaken(t, taken)
	if err != nil {
		head, herr := direct.Head(ctx)
		t.Fatalf("the COMMIT reached the server, so the append committed; got %v (head now %d, %v; stored ids %v)", err, head, herr, storedIDs(t, direct))
	}
	require.Len(t, recs, 3)
	require.Equal(t, eventIDs(recs), storedIDs(t, direct)[1], "stored once, with the ids it returned")
	head, err := direct.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, recs[2].Sequence, head)

	// The store goes on.
	next, err := s.Append(ctx, nil, outcomeBatch(2)...)
	require.NoError(t, err)
	require.Equal(t, head+1, next[0].Sequence)
}

// TestPostgresAppendCommitDropped closes the connection instead of
// passing the COMMIT: the server rolls back, and the append must fail
// with an error that is not ErrUnknownOutcome (it found out) and have
// written nothing.
func TestPostgresAppendCommitDropped(t *testing.T) {
	t.Parallel()
	p, s, direct := proxiedStore(t)
	ctx := t.Context()
	before, err := direct.Head(ctx)
	require.NoError(t, err)
	taken := p.arm(commitDrop, 0)
	_, err = s.Append(ctx, nil, outcomeBatch(1)...)
	waitTaken(t, taken)
	require.Error(t, err)
	require.NotErrorIs(t, err, persistence.ErrUnknownOutcome)
	t.Logf("error: %v", err)
	require.Empty(t, storedIDs(t, direct)[1], "a failed append wrote events")
	head, err := direct.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, before, head)
	next, err := s.Append(ctx, nil, outcomeBatch(2)...)
	require.NoError(t, err)
	require.Equal(t, head+1, next[0].Sequence)
}

// TestPostgresAppendOutcomeUnknown lets the COMMIT reach the server and
// then takes the server away (the proxy cuts every connection and refuses
// new ones): the append cannot learn what happened, and must say exactly
// that, with ErrUnknownOutcome, naming the event to look up. That event
// is in fact stored: any other error would have been a lie.
func TestPostgresAppendOutcomeUnknown(t *testing.T) {
	t.Parallel()
	p, s, direct := proxiedStore(t)
	ctx := t.Context()
	taken := p.arm(commitDown, 0)
	start := time.Now()
	_, err := s.Append(ctx, nil, outcomeBatch(1)...)
	waitTaken(t, taken)
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	require.ErrorIs(t, err, persistence.ErrUnknownOutcome)
	require.NotErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	var ue *persistence.UnknownOutcomeError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "project:p1", ue.Stream)
	require.ErrorContains(t, err, ue.EventID)
	stored := storedIDs(t, direct)[1]
	require.Len(t, stored, 3)
	require.Equal(t, ue.EventID, stored[0])

	// With the server back, the store goes on.
	p.up()
	require.Eventually(t, func() bool {
		_, err := s.Append(ctx, nil, outcomeBatch(2)...)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// TestPostgresAppendCommitAnswerLate holds the answer to an append's
// COMMIT back past the caller's deadline: the append still learns that it
// committed and returns its records, whether the answer comes within the
// store's grace after the deadline (300 ms) or not (2 s: the store gives
// up on the connection and looks the batch up). Before, the append
// returned "context deadline exceeded" for a batch that was stored.
func TestPostgresAppendCommitAnswerLate(t *testing.T) {
	t.Parallel()
	p, s, direct := proxiedStore(t)
	for i, delay := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
		// 200 ms: time enough, on a loaded machine, to send the COMMIT
		// before the deadline; 300 ms is within the store's grace after it.
		actx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		taken := p.arm(commitDelay, delay)
		start := time.Now()
		recs, err := s.Append(actx, nil, outcomeBatch(i)...)
		took := time.Since(start)
		cancel()
		waitTaken(t, taken)
		t.Logf("answer held back %v: the append returned after %v", delay, took.Round(time.Millisecond))
		require.NoError(t, err, "answer held back %v: the COMMIT reached the server", delay)
		require.Equal(t, eventIDs(recs), storedIDs(t, direct)[i], "answer held back %v", delay)
		require.Less(t, took, 2*time.Second, "the append waited for the late answer instead of looking the batch up")
	}
}

// TestPostgresAppendOutcomeTerminatedBackends appends from several
// goroutines while another terminates the store's server sessions
// (pg_terminate_backend), a busy one every 5 to 30 ms. Every Append that
// returned an error other than ErrUnknownOutcome must have written
// nothing; every one that succeeded must be stored once, with the ids it
// returned. Before, 45 of 331 failed appends had been stored: the session
// was terminated between its commit and the answer.
func TestPostgresAppendOutcomeTerminatedBackends(t *testing.T) {
	t.Parallel()
	dsn := dbtest.PostgresSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	app := "peon_terminated_" + q.Get("search_path")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	ctx := t.Context()
	s, err := persistence.Open(ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	killer, err := pgx.Connect(ctx, dbtest.PostgresURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { killer.Close(context.Background()) })

	const goroutines = 4
	appends := 100
	if testing.Short() || raceBuild {
		appends = 40
	}
	type result struct {
		recs []persistence.Recorded
		err  error
	}
	results := make([]result, goroutines*appends)
	var (
		wg         sync.WaitGroup
		terminated atomic.Int64
		stop       = make(chan struct{})
		killerDone = make(chan error, 1)
	)
	go func() {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
		for {
			select {
			case <-stop:
				killerDone <- nil
				return
			case <-time.After(time.Duration(5+rng.IntN(25)) * time.Millisecond):
			}
			var n int64
			if err := killer.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "+
				"WHERE application_name = $1 AND pid <> pg_backend_pid() AND state <> 'idle' ORDER BY random() LIMIT 1) a", app).Scan(&n); err != nil {
				killerDone <- err
				return
			}
			terminated.Add(n)
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for k := range appends {
				i := g*appends + k
				actx, cancel := context.WithTimeout(ctx, 30*time.Second)
				recs, err := s.Append(actx, nil, outcomeBatch(i)...)
				cancel()
				results[i] = result{recs, err}
			}
		})
	}
	wg.Wait()
	close(stop)
	require.NoError(t, <-killerDone)

	stored := storedIDs(t, s)
	var (
		ok, failed, unknown, unknownStored int
		lied                               []string // failed, yet stored
	)
	for i, r := range results {
		got := stored[i]
		switch {
		case errors.Is(r.err, persistence.ErrUnknownOutcome):
			unknown++
			if len(got) > 0 {
				unknownStored++
				require.Len(t, got, 3, "append %d is half-stored", i)
			}
		case r.err != nil:
			failed++
			if len(got) > 0 {
				lied = append(lied, fmt.Sprintf("append %d: %v", i, r.err))
			}
		default:
			ok++
			require.Equal(t, eventIDs(r.recs), got, "append %d succeeded: stored once, with its ids", i)
		}
	}
	t.Logf("%d appends, %d sessions terminated: %d succeeded, %d failed (%d of them stored), %d unknown (%d of them stored)",
		len(results), terminated.Load(), ok, failed, len(lied), unknown, unknownStored)
	require.Empty(t, lied, "%d of %d appends that returned an error were stored", len(lied), failed)
	require.Zero(t, unknown, "the server was up: every outcome can be learned")
	require.NotZero(t, failed, "no append failed: the test terminated nothing in time")

	report, err := s.Verify(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
}
