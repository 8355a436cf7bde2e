package cli

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cancelOn passes writes to w and calls cancel at the first write that
// contains trigger.
type cancelOn struct {
	w       io.Writer
	trigger string
	cancel  func()
	once    sync.Once
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.trigger) {
		c.once.Do(c.cancel)
	}
	return c.w.Write(p)
}

// TestInterrupted: a rebuild or verify whose context ends (Ctrl-C) says
// `interrupted` on one line and exits 1, without a stack trace; the
// store is as it was. Before, a rebuild cut short after it took its
// connection panicked (exit 2 and a Go stack trace).
func TestInterrupted(t *testing.T) {
	t.Parallel()

	t.Run("Rebuild", func(t *testing.T) {
		t.Parallel()
		e, _ := demoEnv(t)
		before := e.ok("threads", "--all")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out, errOut syncBuffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, getenv: func(string) string { return "" },
			stderr: &cancelOn{w: &errOut, trigger: "Rebuilding projections: 0/", cancel: cancel}}
		code := a.run(ctx, []string{"--db", e.db, "rebuild"})
		require.Equal(t, ExitFailure, code, "stdout %q, stderr %q", out.String(), errOut.String())
		require.Equal(t, "Rebuilding projections: 0/393 events (0%)\npeon-store: interrupted\n", errOut.String())
		require.Empty(t, out.String())
		require.Equal(t, before, e.ok("threads", "--all"))
		require.True(t, strings.HasPrefix(e.ok("verify"), "OK: 393 events"))
		e.ok("rebuild")
	})

	// Verify has no progress to cut it at: it is cut after delays spread
	// over the time one run takes. Each run either finishes, saying OK,
	// or says it was interrupted; never anything else.
	t.Run("Verify", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ok("demo", "--threads", "12", "--turns", "8")
		start := time.Now()
		e.ok("verify")
		took := time.Since(start)
		interrupted := 0
		for i := range 8 {
			ctx, cancel := context.WithCancel(t.Context())
			stop := time.AfterFunc(took*time.Duration(i)/8, cancel) // as Ctrl-C does
			r := e.runIn(ctx, nil, "--db", e.db, "verify")
			stop.Stop()
			cancel()
			require.NotContains(t, r.stderr, "goroutine")
			if r.code == ExitOK {
				require.True(t, strings.HasPrefix(r.stdout, "OK: "), r.stdout)
				continue
			}
			require.Equal(t, ExitFailure, r.code)
			require.Equal(t, "peon-store: interrupted\n", r.stderr)
			require.Empty(t, r.stdout)
			interrupted++
		}
		require.NotZero(t, interrupted)
		require.True(t, strings.HasPrefix(e.ok("verify"), "OK: "))
	})
}
