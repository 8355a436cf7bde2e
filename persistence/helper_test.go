//go:build unix

package persistence_test

// The reliability tests run parts of themselves in other processes: the
// test binary re-executes itself with -test.run=^TestHelperProcess$ and
// PEON_HELPER_ROLE naming what the child does. Children talk to the test
// through one line per fact on stdout, written unbuffered, so a line the
// test reads was written before the child died.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// Environment of a helper process.
const (
	envRole  = "PEON_HELPER_ROLE"
	envDSN   = "PEON_HELPER_DSN"
	envSeed  = "PEON_HELPER_SEED"
	envRun   = "PEON_HELPER_RUN"
	envRetry = "PEON_HELPER_RETRY" // "run.batch" of a batch to send again first
	envCount = "PEON_HELPER_COUNT"
	envProcs = "PEON_HELPER_GOROUTINES"
	envUmask = "PEON_HELPER_UMASK"
	envHold  = "PEON_HELPER_HOLD" // keep the store open until killed
	// envTolerate makes the append helper go on after a failed Append,
	// printing "fail RUN BATCH: ERROR" (or "unknown RUN BATCH: ERROR" for
	// ErrUnknownOutcome) instead of exiting.
	envTolerate = "PEON_HELPER_TOLERATE"
)

// TestHelperProcess is not a test: it is the body of the child processes
// of the crash and contention tests, selected by PEON_HELPER_ROLE.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("the body of the reliability tests' child processes; runs only when PEON_HELPER_ROLE is set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	switch role {
	case "append":
		err = helperAppend(ctx)
	case "writer":
		err = helperWriter(ctx)
	case "follower":
		err = helperFollower(ctx)
	case "open":
		err = helperOpen(ctx)
	case "rebuild":
		err = helperRebuild(ctx)
	case "prune":
		err = helperPrune(ctx)
	case "compact":
		err = helperCompact(ctx)
	default:
		err = fmt.Errorf("unknown helper role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// say writes one line to stdout at once (os.Stdout is unbuffered).
var sayMu sync.Mutex

func say(format string, args ...any) {
	sayMu.Lock()
	defer sayMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envUint64(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// tag names event i of batch b of run (or writer) r, of n events. Every
// event of the reliability tests carries its tag, so a check can tell from
// the log alone which batch an event belongs to and whether the batch is
// whole.
type tag struct{ run, batch, i, n int }

func (g tag) String() string { return fmt.Sprintf("r%d.b%d.i%d.n%d", g.run, g.batch, g.i, g.n) }

func parseTag(s string) (tag, error) {
	var g tag
	_, err := fmt.Sscanf(s, "r%d.b%d.i%d.n%d", &g.run, &g.batch, &g.i, &g.n)
	return g, err
}

// batchKey identifies a batch.
type batchKey struct{ run, batch int }

// tagged returns the tag an event carries.
func tagged(e orchestration.Event) (tag, error) {
	switch e := e.(type) {
	case orchestration.ThreadCreated:
		return parseTag(e.Title)
	case orchestration.ThreadRenamed:
		return parseTag(e.Title)
	case orchestration.TurnStarted:
		return parseTag(e.TurnID)
	case orchestration.MessageAdded:
		return parseTag(e.Text)
	case orchestration.MessageDelta:
		return parseTag(e.Delta)
	case orchestration.SettingChanged:
		return parseTag(e.Key)
	}
	return tag{}, fmt.Errorf("untagged event type %T", e)
}

// batchEvents returns batch b of run r: the same events for the same
// (seed, r, b), so a batch can be sent again after a crash. Its events are
// spread over four thread streams and the settings stream, in types that
// every projection reacts to.
func batchEvents(seed uint64, r, b, n int) []orchestration.Event {
	rng := rand.New(rand.NewPCG(seed, uint64(r)<<32|uint64(b)))
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC).Add(time.Duration(r*100000+b) * time.Millisecond)
	evs := make([]orchestration.Event, n)
	for i := range n {
		g := tag{r, b, i, n}.String()
		th := fmt.Sprintf("t%d", rng.IntN(4))
		msg := "m-" + th
		switch rng.IntN(6) {
		case 0:
			evs[i] = orchestration.ThreadCreated{ThreadID: th, ProjectID: "p", Title: g, Model: "m", At: at}
		case 1:
			evs[i] = orchestration.ThreadRenamed{ThreadID: th, Title: g, At: at}
		case 2:
			evs[i] = orchestration.TurnStarted{ThreadID: th, TurnID: g, At: at}
		case 3:
			evs[i] = orchestration.MessageAdded{ThreadID: th, TurnID: "u", MessageID: msg, Role: orchestration.RoleAssistant, Text: g, Streaming: true, At: at}
		case 4:
			evs[i] = orchestration.MessageDelta{ThreadID: th, TurnID: "u", MessageID: msg, Delta: g, At: at}
		default:
			evs[i] = orchestration.SettingChanged{Key: g, Value: json.RawMessage(strconv.Itoa(i)), At: at}
		}
	}
	return evs
}

// batchSize is the size of batch b of run r: 1 to max.
func batchSize(seed uint64, r, b, maxSize int) int {
	rng := rand.New(rand.NewPCG(seed^0x5eed, uint64(r)<<32|uint64(b)))
	return 1 + rng.IntN(maxSize)
}

func commandID(r, b int) string { return fmt.Sprintf("cmd-r%d-b%d", r, b) }

// helperAppend opens the store and appends batches until it is killed,
// printing "ack RUN BATCH N FIRSTSEQ" after each Append returns. With
// PEON_HELPER_RETRY it first sends that batch again (same command id).
// With PEON_HELPER_TOLERATE it reports a failed Append and goes on.
func helperAppend(ctx context.Context) error {
	seed, run := envUint64(envSeed, 1), envInt(envRun, 0)
	tolerate := os.Getenv(envTolerate) != ""
	say("start")
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	say("opened")
	send := func(r, b int) error {
		n := batchSize(seed, r, b, 50)
		recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: commandID(r, b)}, batchEvents(seed, r, b, n)...)
		if err != nil && tolerate {
			text := strings.ReplaceAll(err.Error(), "\n", " ")
			if errors.Is(err, persistence.ErrUnknownOutcome) {
				say("unknown %d %d: %s", r, b, text)
			} else {
				say("fail %d %d: %s", r, b, text)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("append batch r%d.b%d: %w", r, b, err)
		}
		if len(recs) != n {
			return fmt.Errorf("append batch r%d.b%d: %d records for %d events", r, b, len(recs), n)
		}
		say("ack %d %d %d %d", r, b, n, recs[0].Sequence)
		return nil
	}
	if retry := os.Getenv(envRetry); retry != "" {
		var r, b int
		if _, err := fmt.Sscanf(retry, "%d.%d", &r, &b); err != nil {
			return fmt.Errorf("bad %s %q", envRetry, retry)
		}
		if err := send(r, b); err != nil {
			return err
		}
	}
	for b := 0; ; b++ {
		if err := send(run, b); err != nil {
			return err
		}
	}
}

// helperWriter appends PEON_HELPER_COUNT batches of 1–20 events from each
// of PEON_HELPER_GOROUTINES goroutines, reading its own stream back after
// each, and prints "done EVENTS". Any error (a SQLITE_BUSY among them)
// fails it.
func helperWriter(ctx context.Context) error {
	seed, id := envUint64(envSeed, 1), envInt(envRun, 0)
	count, procs := envInt(envCount, 20), envInt(envProcs, 2)
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	defer s.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		first error
	)
	for g := range procs {
		wg.Go(func() {
			r := id*100 + g // the "run" of this goroutine's tags
			for b := range count {
				n := batchSize(seed, r, b, 20)
				recs, err := s.Append(ctx, nil, batchEvents(seed, r, b, n)...)
				if err == nil && len(recs) != n {
					err = fmt.Errorf("%d records for %d events", len(recs), n)
				}
				if err == nil {
					// A read while others write: the batch is there, whole.
					got := 0
					for rec, rerr := range s.ReplayFrom(ctx, recs[0].Sequence) {
						if rerr != nil {
							err = rerr
							break
						}
						if got++; got == n {
							break
						}
						_ = rec
					}
					if err == nil && got != n {
						err = fmt.Errorf("read back %d of %d events", got, n)
					}
				}
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("writer %d goroutine %d batch %d: %w", id, g, b, err)
				}
				total += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	say("done %d", total)
	return nil
}

// helperFollower follows the log from the start with Subscribe and, at the
// same time, with a ReplayFrom poll, until each has seen PEON_HELPER_COUNT
// events; a sequence that is not the one after the last seen is a gap.
func helperFollower(ctx context.Context) error {
	want := int64(envInt(envCount, 0))
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		wg          sync.WaitGroup
		subErr      error
		pollErr     error
		subN, pollN int64
	)
	wg.Go(func() {
		var last int64
		for rec, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				subErr = fmt.Errorf("subscribe after %d: %w", last, err)
				return
			}
			if rec.Sequence != last+1 {
				subErr = fmt.Errorf("subscribe: gap: %d after %d", rec.Sequence, last)
				return
			}
			last = rec.Sequence
			if last == want {
				break
			}
		}
		subN = last
	})
	wg.Go(func() {
		var last int64
		for last < want && ctx.Err() == nil {
			for rec, err := range s.ReplayFrom(ctx, last+1) {
				if err != nil {
					pollErr = fmt.Errorf("replay after %d: %w", last, err)
					return
				}
				if rec.Sequence != last+1 {
					pollErr = fmt.Errorf("replay: gap: %d after %d", rec.Sequence, last)
					return
				}
				last = rec.Sequence
			}
			time.Sleep(5 * time.Millisecond)
		}
		pollN = last
	})
	wg.Wait()
	if subErr != nil {
		return subErr
	}
	if pollErr != nil {
		return pollErr
	}
	if subN != want || pollN != want {
		return fmt.Errorf("followed %d (subscribe) and %d (replay) of %d events", subN, pollN, want)
	}
	say("followed %d", want)
	return nil
}

// helperOpen opens the store (with PEON_HELPER_UMASK set first when
// given), appends one event and prints "ok SEQ", or "error MESSAGE" when
// opening fails (the test judges the message).
func helperOpen(ctx context.Context) error {
	if m := os.Getenv(envUmask); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			return err
		}
		syscall.Umask(int(v))
	}
	dsn := os.Getenv(envDSN)
	var (
		s   *persistence.Store
		err error
	)
	if dir, ok := strings.CutPrefix(dsn, "dir:"); ok {
		s, err = persistence.OpenDir(ctx, dir)
	} else {
		s, err = persistence.Open(ctx, dsn)
	}
	if err != nil {
		say("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		return nil
	}
	defer s.Close()
	recs, err := s.Append(ctx, nil, orchestration.SettingChanged{Key: "opened", Value: json.RawMessage(`true`), At: time.Now()})
	if err != nil {
		say("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		return nil
	}
	say("ok %d", recs[0].Sequence)
	if os.Getenv(envHold) != "" {
		<-ctx.Done()
	}
	return nil
}

// helperRebuild opens the store (which catches its projections up) and
// rebuilds them until it is killed, printing "start", "opened" and
// "rebuilt" after each rebuild.
func helperRebuild(ctx context.Context) error {
	say("start")
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	say("opened")
	for {
		if err := rebuild(ctx, s); err != nil {
			return err
		}
		say("rebuilt")
	}
}

// helperCompact opens the store and compacts it until it is killed,
// printing "opened", then "compacted N" after each compaction (N events
// removed).
func helperCompact(ctx context.Context) error {
	s, err := persistence.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		return err
	}
	say("opened")
	for {
		rep, err := s.Compact(ctx, nil)
		if err != nil {
			return err
		}
		say("compacted %d", rep.Events)
	}
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *lockedBuffer
	// app is the application_name of the child's PostgreSQL sessions and
	// server the URL, without it, of their server; both are empty for a
	// child that does not open a PostgreSQL store.
	app, server string
}

// startHelper starts the test binary as a helper of role with env added.
func startHelper(t testing.TB, role string, env ...string) *child {
	t.Helper()
	c := helperCommand(t, role, env...)
	startChild(t, c)
	return c
}

// startChild starts a child made by helperCommand and reads its stdout.
func startChild(t testing.TB, c *child) {
	t.Helper()
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	c.lines = make(chan string, 4096)
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
}

func helperCommand(t testing.TB, role string, env ...string) *child {
	t.Helper()
	return helperCommandOf(os.Args[0], role, env...)
}

// helperCommandOf makes a child of role that runs exe with env added.
// A PostgreSQL PEON_HELPER_DSN gets an application_name of its own,
// unless it names one, so that kill can wait for the child's sessions.
func helperCommandOf(exe, role string, env ...string) *child {
	c := &child{stderr: &lockedBuffer{}}
	env = slices.Clone(env)
	for i, e := range env {
		dsn, ok := strings.CutPrefix(e, envDSN+"=")
		if !ok || !strings.HasPrefix(dsn, "postgres://") {
			continue
		}
		u, err := url.Parse(dsn)
		if err != nil {
			continue // the child reports it
		}
		q := u.Query()
		c.app = q.Get("application_name")
		if c.app == "" {
			c.app = fmt.Sprintf("peon_child_%016x", rand.Uint64())
		}
		q.Del("application_name")
		u.RawQuery = q.Encode()
		c.server = u.String()
		q.Set("application_name", c.app)
		u.RawQuery = q.Encode()
		env[i] = envDSN + "=" + u.String()
	}
	c.cmd = exec.Command(exe, "-test.run=^TestHelperProcess$")
	c.cmd.Env = append(os.Environ(), envRole+"="+role)
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stderr = c.stderr
	return c
}

// waitLine waits for a line with prefix and returns it.
func (c *child) waitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("helper ended before printing %q; stderr: %s", prefix, c.stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("helper did not print %q within %v; stderr: %s", prefix, timeout, c.stderr)
		}
	}
}

// kill sends SIGKILL, waits for the process and, on PostgreSQL, for the
// server to end its sessions (awaitSessions), and returns every complete
// line it printed that the test had not read.
func (c *child) kill(t testing.TB) []string {
	t.Helper()
	c.cmd.Process.Kill()
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	c.cmd.Wait()
	c.awaitSessions(t)
	return out
}

// sessionsTimeout is how long awaitSessions waits.
const sessionsTimeout = time.Minute

// awaitSessions waits until the server has ended every session of the
// child, which must have exited. A PostgreSQL backend learns that its
// client is gone only when it next reads from or writes to the socket:
// until then it runs what it had received, which may be an append's last
// round trip, INSERTs, projection and COMMIT, or a wait for the append
// lock before it. What a killed child wrote is decided only when its
// sessions have ended; a check that reads the log before then can see the
// child's last batch commit after it has read.
func (c *child) awaitSessions(t testing.TB) {
	t.Helper()
	if c.app == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionsTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.server)
	require.NoError(t, err, "connect to wait for the sessions of the killed child")
	defer conn.Close(context.Background())
	for {
		var (
			n    int
			left string
		)
		err := conn.QueryRow(ctx, "SELECT count(*), coalesce(string_agg(format('%s (%s, waiting for %s): %s', "+
			"pid, state, coalesce(wait_event, 'nothing'), left(query, 80)), '; '), '') "+
			"FROM pg_stat_activity WHERE application_name = $1", c.app).Scan(&n, &left)
		require.NoError(t, err, "list the sessions of the killed child")
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the sessions of the killed child did not end within %v: %s", sessionsTimeout, left)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// wait waits for the process to end and returns its remaining lines.
func (c *child) wait(t testing.TB) []string {
	t.Helper()
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	err := c.cmd.Wait()
	require.NoError(t, err, "helper failed; stderr: %s", c.stderr)
	return out
}

// lockedBuffer collects a child's stderr while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
