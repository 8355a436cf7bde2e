//go:build unix

package persistence_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/migrations"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// reliabilitySeed returns PEON_RELIABILITY_SEED, or a fresh seed, and logs
// it so that a failing run can be repeated.
func reliabilitySeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PEON_RELIABILITY_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "PEON_RELIABILITY_SEED")
	}
	t.Logf("seed %d (repeat with PEON_RELIABILITY_SEED=%d)", seed, seed)
	return seed
}

// reliabilityKills returns PEON_RELIABILITY_KILLS, or def.
func reliabilityKills(t *testing.T, def int) int {
	t.Helper()
	if v := os.Getenv("PEON_RELIABILITY_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "PEON_RELIABILITY_KILLS")
		return n
	}
	if testing.Short() {
		return def / 5
	}
	return def
}

// logChecker reads a log written by tagged batches and checks, as it goes,
// that sequences and stream versions have no holes and that every batch
// is whole: its events all present, in order, at contiguous sequences,
// once.
type logChecker struct {
	head     int64            // checked up to here
	versions map[string]int64 // last version seen per stream
	batches  map[batchKey]*batchSeen
}

type batchSeen struct {
	n, seen int
	first   int64
}

func newLogChecker() *logChecker {
	return &logChecker{versions: map[string]int64{}, batches: map[batchKey]*batchSeen{}}
}

// scan checks the events after c.head and returns how many it read.
func (c *logChecker) scan(t *testing.T, ctx context.Context, s *persistence.Store) int {
	t.Helper()
	read := 0
	touched := map[batchKey]bool{}
	for rec, err := range s.ReplayFrom(ctx, c.head+1) {
		require.NoError(t, err)
		require.Equal(t, c.head+1, rec.Sequence, "sequence hole after %d", c.head)
		c.versions[rec.StreamID]++
		require.Equal(t, c.versions[rec.StreamID], rec.StreamVersion, "stream version hole in %s at sequence %d", rec.StreamID, rec.Sequence)
		g, err := tagged(rec.Event)
		require.NoError(t, err, "sequence %d", rec.Sequence)
		k := batchKey{g.run, g.batch}
		b := c.batches[k]
		if b == nil {
			require.Zero(t, g.i, "batch r%d.b%d starts at event %d (sequence %d)", g.run, g.batch, g.i, rec.Sequence)
			b = &batchSeen{n: g.n, first: rec.Sequence}
			c.batches[k] = b
		}
		require.Equal(t, b.seen, g.i, "batch r%d.b%d: event %d at sequence %d, after %d of its %d events (written twice?)", g.run, g.batch, g.i, rec.Sequence, b.seen, b.n)
		require.Equal(t, b.first+int64(g.i), rec.Sequence, "batch r%d.b%d is not contiguous", g.run, g.batch)
		b.seen++
		touched[k] = true
		c.head = rec.Sequence
		read++
	}
	for k := range touched {
		b := c.batches[k]
		require.Equal(t, b.n, b.seen, "batch r%d.b%d is half-written: %d of %d events", k.run, k.batch, b.seen, b.n)
	}
	// Nothing writes while a check reads: a killed child's sessions have
	// ended (child.kill), so the replay above read the whole log.
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, c.head, head, "Head")
	return read
}

// ack is what a helper printed after an Append returned.
type ack struct {
	key   batchKey
	n     int
	first int64
}

func parseAcks(t *testing.T, lines []string) []ack {
	t.Helper()
	var acks []ack
	for _, l := range lines {
		var a ack
		if _, err := fmt.Sscanf(l, "ack %d %d %d %d", &a.key.run, &a.key.batch, &a.n, &a.first); err == nil {
			acks = append(acks, a)
		}
	}
	return acks
}

// crashStats are the figures of a crash run, logged for docs/RELIABILITY.md.
type crashStats struct {
	kills, beforeOpen, acked, inFlightCommitted, inFlightLost, verified int
	events                                                              int64
}

// TestCrashAppend kills a process that appends batches with SIGKILL at
// random moments, PEON_RELIABILITY_KILLS times (50), and after each kill
// (on PostgreSQL, once the server has ended the child's sessions, which
// may still commit its last batch) reopens the store and checks that
// every acknowledged batch is there with
// its sequences, no batch is half-written, sequences and stream versions
// have no holes, the projections equal a rebuild and the next append
// works. The helper's next life first sends again the batch that was in
// flight, with its command id: it must not be written twice.
func TestCrashAppend(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashAppend)
}

func crashAppend(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 50)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := t.Context()
	dsn := d.newDSN(t)
	check := newLogChecker()
	var (
		st    crashStats
		retry string
	)
	slow, verifyEvery := time.Duration(1), 5
	if raceBuild {
		// The helper runs about 30 times slower, Verify too.
		slow, verifyEvery = 2, 25
	}
	if v := os.Getenv("PEON_RELIABILITY_VERIFY_EVERY"); v != "" {
		var err error
		verifyEvery, err = strconv.Atoi(v)
		require.NoError(t, err, "PEON_RELIABILITY_VERIFY_EVERY")
	}
	// A follower in this process watches the log through every crash: it
	// must never see a gap, nor an event that a crash then takes back.
	fs, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	defer fs.Close()
	fctx, stopFollower := context.WithCancel(ctx)
	defer stopFollower()
	var (
		seen      = map[int64]string{} // sequence -> event id
		followed  atomic.Int64
		followErr error
		followEnd = make(chan struct{})
	)
	go func() {
		defer close(followEnd)
		for rec, err := range fs.Subscribe(fctx, 0) {
			if err != nil {
				followErr = fmt.Errorf("follower after %d: %w", followed.Load(), err)
				return
			}
			if rec.Sequence != followed.Load()+1 {
				followErr = fmt.Errorf("follower: gap: %d after %d", rec.Sequence, followed.Load())
				return
			}
			seen[rec.Sequence] = rec.EventID
			followed.Store(rec.Sequence)
		}
	}()

	start := time.Now()
	var verifyTime time.Duration
	for run := range kills {
		env := []string{envDSN + "=" + dsn, fmt.Sprintf("%s=%d", envSeed, seed), fmt.Sprintf("%s=%d", envRun, run)}
		if retry != "" {
			env = append(env, envRetry+"="+retry)
		}
		c := startHelper(t, "append", env...)
		var lines []string
		opened := false
		if rng.IntN(100) < 15 {
			// Early: while the process starts, opens, migrates, catches up.
			c.waitLine(t, "start", 30*time.Second)
			time.Sleep(time.Duration(rng.IntN(10_000)) * time.Microsecond)
		} else {
			c.waitLine(t, "opened", 30*time.Second)
			opened = true
			time.Sleep(time.Duration(rng.IntN(120_000)) * time.Microsecond * slow)
		}
		lines = c.kill(t)
		st.kills++
		acks := parseAcks(t, lines)
		if !opened && !slicesContains(lines, "opened") {
			st.beforeOpen++
		}

		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "reopen after kill %d", run)
		st.events += int64(check.scan(t, ctx, s))
		for _, a := range acks {
			b := check.batches[a.key]
			require.NotNil(t, b, "acknowledged batch r%d.b%d is missing after kill %d", a.key.run, a.key.batch, run)
			require.Equal(t, a.n, b.n, "acknowledged batch r%d.b%d", a.key.run, a.key.batch)
			require.Equal(t, a.first, b.first, "acknowledged batch r%d.b%d moved", a.key.run, a.key.batch)
		}
		// The batch after the last acknowledged one was in flight (or
		// not yet begun); it is sent again by the next life.
		next := 0
		for _, a := range acks {
			if a.key.run == run {
				next = a.key.batch + 1
			}
		}
		st.acked += len(acks)
		if _, ok := check.batches[batchKey{run, next}]; ok {
			st.inFlightCommitted++
		} else if opened {
			st.inFlightLost++
		}
		retry = fmt.Sprintf("%d.%d", run, next)
		// The projections moved with the log (they commit in the append's
		// transaction); every verifyEvery kills, and after the last, Verify
		// compares them with a rebuild (its cost grows with the log).
		requireProjectorsAt(t, dsn, check.head)
		if run%verifyEvery == verifyEvery-1 || run == kills-1 {
			v := time.Now()
			verifyProjections(t, ctx, s)
			verifyTime += time.Since(v)
			st.verified++
		}

		// The next append works and takes the next sequence.
		probe := batchKey{1_000_000 + run, 0}
		recs, err := s.Append(ctx, nil, batchEvents(seed, probe.run, probe.batch, 1)...)
		require.NoError(t, err, "append after kill %d", run)
		require.Equal(t, check.head+1, recs[0].Sequence)
		check.scan(t, ctx, s)
		require.NoError(t, s.Close())
	}

	// Finally, the whole log from the start, with a fresh checker.
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	whole := newLogChecker()
	whole.scan(t, ctx, s)
	require.Equal(t, check.head, whole.head)
	verifyProjections(t, ctx, s)
	require.Eventually(t, func() bool { return followed.Load() == whole.head }, 30*time.Second, 10*time.Millisecond,
		"the follower reached %d of %d", followed.Load(), whole.head)
	stopFollower()
	<-followEnd
	require.NoError(t, followErr)
	for rec, err := range s.ReplayAll(ctx) {
		require.NoError(t, err)
		require.Equal(t, rec.EventID, seen[rec.Sequence], "the follower saw another event at %d", rec.Sequence)
	}
	t.Logf(d.dialect+": %d kills (%d before the store was open), %d acknowledged batches, %d events, %d in-flight batches committed and %d not, %d Verify runs, in %v (%v of it in Verify)",
		st.kills, st.beforeOpen, st.acked, st.events, st.inFlightCommitted, st.inFlightLost, st.verified, time.Since(start).Round(time.Millisecond), verifyTime.Round(time.Millisecond))
}

// requireProjectorsAt checks that every projector's last_sequence is head.
func requireProjectorsAt(t *testing.T, path string, head int64) {
	t.Helper()
	require.Equal(t, int(head), queryInt(t, path, "SELECT MIN(last_sequence) FROM projection_state"), "a projector lags the log")
	require.Equal(t, int(head), queryInt(t, path, "SELECT MAX(last_sequence) FROM projection_state"), "a projector is ahead of the log")
}

func slicesContains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestCrashMigration kills a process while it creates and migrates a
// brand-new database file, at random moments within the time a first
// open takes, and checks that the next open completes the migration and
// the store works.
func TestCrashMigration(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashMigration)
}

func crashMigration(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 20)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx := t.Context()

	// How long a first open takes here, to aim the kills.
	begin := time.Now()
	s, err := persistence.Open(ctx, d.newDSN(t))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	window := 2 * time.Since(begin)
	t.Logf(d.dialect+": a first open takes about %v; killing within %v of it", window/2, window)

	files, err := migrations.FS.ReadDir(d.dialect)
	require.NoError(t, err)
	wantRevisions := len(files) - 1 // without atlas.sum

	before := 0
	for run := range kills {
		dsn := d.newDSN(t)
		c := startHelper(t, "append", envDSN+"="+dsn, envRun+"=0")
		c.waitLine(t, "start", 30*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		if !slicesContains(c.kill(t), "opened") {
			before++
		}
		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "open after a kill during the first open (%d)", run)
		require.Equal(t, wantRevisions, queryInt(t, dsn, "SELECT COUNT(*) FROM atlas_schema_revisions"))
		check := newLogChecker()
		check.scan(t, ctx, s)
		_, err = s.Append(ctx, nil, orchestration.SettingChanged{Key: "after", Value: []byte("1"), At: time.Now()})
		require.NoError(t, err)
		verifyProjections(t, ctx, s)
		require.NoError(t, s.Close())
	}
	t.Logf(d.dialect+": %d kills during a first open, %d of them before it completed", kills, before)
}

// TestCrashRebuild kills a process in the middle of rebuilding the
// projections, at random moments within the time a rebuild takes, and
// checks that the reopened store's projections equal a rebuild (Verify)
// and that appending works.
func TestCrashRebuild(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashRebuild)
}

func crashRebuild(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 20)
	batches := 150
	if raceBuild {
		kills, batches = kills/2, 20
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx := t.Context()
	dsn := d.newDSN(t)
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	for b := range batches {
		_, err := s.Append(ctx, nil, batchEvents(seed, 0, b, batchSize(seed, 0, b, 50))...)
		require.NoError(t, err)
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	begin := time.Now()
	err = s.Rebuild(ctx, nil)
	require.NoError(t, err)
	window := time.Since(begin) * 3 / 2
	require.NoError(t, s.Close())
	t.Logf(d.dialect+": a rebuild of %d events takes about %v; killing within %v of the open", head, window*2/3, window)

	during := 0
	for run := range kills {
		c := startHelper(t, "rebuild", envDSN+"="+dsn)
		c.waitLine(t, "opened", 30*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		if !slicesContains(c.kill(t), "rebuilt") {
			during++
		}
		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "open after a kill during a rebuild (%d)", run)
		verifyProjections(t, ctx, s)
		recs, err := s.Append(ctx, nil, batchEvents(seed, 1, run, 1)...)
		require.NoError(t, err)
		require.Equal(t, head+1, recs[0].Sequence)
		head++
		requireProjectorsAt(t, dsn, head)
		require.NoError(t, s.Close())
	}
	t.Logf(d.dialect+": %d kills, %d of them during the first rebuild of the process", kills, during)
}

// TestCrashCatchUp kills a process while its open catches the projections
// up with a log that a bare writer (Options.NoProjections) extended, and
// checks that the next open's projections equal a rebuild.
func TestCrashCatchUp(t *testing.T) {
	t.Parallel()
	forEachDialect(t, crashCatchUp)
}

func crashCatchUp(t *testing.T, d dialectCase) {
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 16)
	batches := 80
	if raceBuild {
		kills, batches = kills/2, 10
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	ctx := t.Context()
	dsn := d.newDSN(t)
	during := 0
	var window time.Duration
	for run := range kills {
		bare, err := persistence.OpenWith(ctx, dsn, &persistence.Options{NoProjections: true})
		require.NoError(t, err)
		for b := range batches {
			_, err := bare.Append(ctx, nil, batchEvents(seed, run, b, batchSize(seed, run, b, 50))...)
			require.NoError(t, err)
		}
		require.NoError(t, bare.Close())
		if window == 0 {
			// How long catching up this much takes, to aim the kills.
			begin := time.Now()
			s, err := persistence.Open(ctx, dsn)
			require.NoError(t, err)
			window = 3 * time.Since(begin)
			require.NoError(t, s.Close())
			t.Logf(d.dialect+": an open that catches up %d batches takes about %v; killing within %v of start", batches, window/3, window)
			continue
		}
		c := startHelper(t, "rebuild", envDSN+"="+dsn)
		c.waitLine(t, "start", 30*time.Second)
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		if !slicesContains(c.kill(t), "opened") {
			during++
		}
		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "open after a kill during catch-up (%d)", run)
		head, err := s.Head(ctx)
		require.NoError(t, err)
		requireProjectorsAt(t, dsn, head)
		if run%5 == 4 || run == kills-1 {
			// Verify's cost grows with the log, which grows each round.
			verifyProjections(t, ctx, s)
		}
		require.NoError(t, s.Close())
	}
	t.Logf(d.dialect+": %d kills, %d of them before the open (and its catch-up) completed", kills-1, during)
}

// TestCrashAppendTerminatedBackends is TestCrashAppend on PostgreSQL with
// the server taking sessions away too: while the child appends, the test
// terminates one of its busy sessions (pg_terminate_backend) every 10 to
// 50 ms, and the child reports each Append that failed ("fail", or
// "unknown" for ErrUnknownOutcome, with the error) and goes on, until it
// is SIGKILLed within 0.2 to 0.6 s of its open. After each kill, and once
// the server has ended the child's sessions, besides what TestCrashAppend
// checks, no batch whose Append failed may be in the log, unless it was
// there before that Append began: the batch the child sends again first
// may have been stored by the child before it, and an Append that finds
// its command stored and then fails (looking up the records) wrote
// nothing. PEON_RELIABILITY_KILLS times (20).
func TestCrashAppendTerminatedBackends(t *testing.T) {
	t.Parallel()
	base := dbtest.PostgresURL(t)
	seed := reliabilitySeed(t)
	kills := reliabilityKills(t, 20)
	if raceBuild {
		kills /= 2 // the child runs about 30 times slower
	}
	rng := rand.New(rand.NewPCG(seed, 4))
	ctx := t.Context()
	dsn := dbtest.PostgresSchema(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	app := "peon_crash_" + q.Get("search_path")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	childDSN := u.String()
	killer, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	defer killer.Close(context.Background())

	check := newLogChecker()
	var (
		retry                             string
		resent                            batchKey // the batch of retry
		resentStored                      bool     // whether it was stored before the child began
		acked, failed, unknown, committed int
		storedBefore                      int // failed, of a batch stored before its Append
		terminated                        int64
	)
	for run := range kills {
		env := []string{envDSN + "=" + childDSN, envTolerate + "=1", fmt.Sprintf("%s=%d", envSeed, seed), fmt.Sprintf("%s=%d", envRun, run)}
		if retry != "" {
			env = append(env, envRetry+"="+retry)
		}
		c := startHelper(t, "append", env...)
		c.waitLine(t, "opened", 30*time.Second)
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			trng := rand.New(rand.NewPCG(seed, uint64(run)))
			for {
				select {
				case <-stop:
					done <- nil
					return
				case <-time.After(time.Duration(10+trng.IntN(40)) * time.Millisecond):
				}
				var n int64
				if err := killer.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "+
					"WHERE application_name = $1 AND state <> 'idle' ORDER BY random() LIMIT 1) a", app).Scan(&n); err != nil {
					done <- err
					return
				}
				terminated += n
			}
		}()
		time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
		lines := c.kill(t)
		close(stop)
		require.NoError(t, <-done)

		s, err := persistence.Open(ctx, dsn)
		require.NoError(t, err, "reopen after kill %d", run)
		check.scan(t, ctx, s)
		acks := parseAcks(t, lines)
		next := 0
		for _, a := range acks {
			b := check.batches[a.key]
			require.NotNil(t, b, "acknowledged batch r%d.b%d is missing after kill %d", a.key.run, a.key.batch, run)
			require.Equal(t, a.first, b.first, "acknowledged batch r%d.b%d moved", a.key.run, a.key.batch)
			if a.key.run == run {
				next = max(next, a.key.batch+1)
			}
		}
		acked += len(acks)
		for _, l := range lines {
			var r, b int
			if _, err := fmt.Sscanf(l, "fail %d %d", &r, &b); err == nil {
				failed++
				if k := (batchKey{r, b}); retry != "" && k == resent && resentStored {
					storedBefore++
				} else {
					require.Nil(t, check.batches[k], "batch r%d.b%d is stored, but its Append returned an error (kill %d): %s", r, b, run, l)
				}
				next = max(next, b+1)
			} else if _, err := fmt.Sscanf(l, "unknown %d %d", &r, &b); err == nil {
				unknown++
				if check.batches[batchKey{r, b}] != nil {
					committed++
				}
				next = max(next, b+1)
			}
		}
		retry, resent = fmt.Sprintf("%d.%d", run, next), batchKey{run, next}
		resentStored = check.batches[resent] != nil
		requireProjectorsAt(t, dsn, check.head)
		require.NoError(t, s.Close())
	}
	s, err := persistence.Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	newLogChecker().scan(t, ctx, s)
	verifyProjections(t, ctx, s)
	t.Logf("postgres: %d kills, %d sessions terminated; %d acknowledged batches, %d failed (none stored by the failed Append; %d sent again, stored before), %d unknown (%d of them stored)",
		kills, terminated, acked, failed, storedBefore, unknown, committed)
	require.NotZero(t, failed, "no Append failed: the terminations missed")
}
