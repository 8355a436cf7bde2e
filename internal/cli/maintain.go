package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) rebuildCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild",
		Short: "Recompute the projection tables from the log",
		Long: `rebuild applies the whole log again into temporary tables, then swaps them
in for the projection tables in one short transaction: readers see the old
tables until it commits, then the new ones. Other programs go on appending
while it runs; what they append meanwhile is in the new tables. It shows a
progress bar on a terminal, plain progress lines otherwise.`,
		Args: noArgs,
		RunE: a.withStore(mustExist, func(ctx context.Context, s *persistence.Store, _ []string) error {
			p := a.newProgress("Rebuilding projections")
			start := time.Now()
			err := s.Rebuild(ctx, &persistence.RebuildOpts{Progress: p.update})
			p.finish()
			if err != nil {
				return fmt.Errorf("%w; the projections are as they were", err)
			}
			el := time.Since(start)
			fmt.Fprintf(a.stdout, "Rebuilt the projections from %d events in %s (%s events/s).\n",
				p.total, el.Round(time.Millisecond), rate(p.total, el))
			return nil
		}),
	}
}

func (a *app) verifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the log's integrity and that the projections equal a rebuild",
		Long: `verify checks that sequences run without gaps, each stream's versions run
1, 2, 3…, every payload decodes, and the projection tables equal a rebuild
from the log. It changes nothing. It exits with status 1 and lists each
problem when the store is not sound.`,
		Args: noArgs,
		RunE: a.withStore(readOnly, func(ctx context.Context, s *persistence.Store, _ []string) error {
			r, err := s.Verify(ctx)
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			if r.OK() {
				fmt.Fprintf(a.stdout, "OK: %d events in %d streams; sequences and versions without gaps, every payload decodes, the projections equal a rebuild.\n",
					r.Events, r.Streams)
				return nil
			}
			fmt.Fprintf(a.stdout, "%d events in %d streams; %d problem%s:\n", r.Events, r.Streams, len(r.Problems), plural(len(r.Problems)))
			for _, p := range r.Problems {
				fmt.Fprintf(a.stdout, "  %s\n", oneLine(p.String()))
			}
			return fmt.Errorf("verify: the store is not sound (%d problem%s listed above); `peon-store rebuild` repairs projection problems, log problems need a repair by hand",
				len(r.Problems), plural(len(r.Problems)))
		}),
	}
}

// progress shows how far a long command got, on stderr: a bar redrawn in
// place on a terminal, otherwise a plain line at every tenth.
type progress struct {
	w           io.Writer
	label       string
	terminal    bool
	done, total int64
	shown       int // the tenth (plain lines) or percent (bar) last shown
	drawn       bool
}

func (a *app) newProgress(label string) *progress {
	return &progress{w: a.stderr, label: label, terminal: a.isTerminal(a.stderr), shown: -1}
}

func (p *progress) update(done, total int64) {
	p.done, p.total = done, total
	if total <= 0 {
		if p.terminal {
			fmt.Fprintf(p.w, "\r%s  %d events", p.label, done)
			p.drawn = true
		}
		return
	}
	pct := int(done * 100 / total)
	if p.terminal {
		if pct == p.shown && done != total {
			return
		}
		const width = 30
		fill := int(done * width / total)
		fmt.Fprintf(p.w, "\r%s  [%s%s] %3d%%  %d/%d events", p.label, strings.Repeat("#", fill), strings.Repeat("-", width-fill), pct, done, total)
		p.shown, p.drawn = pct, true
		return
	}
	if tenth := pct / 10; tenth != p.shown {
		fmt.Fprintf(p.w, "%s: %d/%d events (%d%%)\n", p.label, done, total, pct)
		p.shown = tenth
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// rate formats n events over d as events per second.
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}
