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
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Recompute the projection tables from the log",
		Long: `rebuild applies the whole log again into temporary tables, then swaps them
in for the projection tables in one short transaction: readers see the old
tables until it commits, then the new ones. Other programs go on appending
while it runs; what they append meanwhile is in the new tables. It shows a
progress bar on a terminal, plain progress lines otherwise.

A stored row that cannot be decoded is left out of the new tables, and a
sequence missing from the log is passed over: rebuild then says how many
events it applied of how many, and warns on stderr about each kind, naming
the first. ` + "`peon-store verify`" + ` lists them all.`,
		Args: noArgs,
		RunE: a.withStore(mustExist, func(ctx context.Context, s *persistence.Store, _ []string) error {
			p := a.newProgress("Rebuilding projections")
			start := time.Now()
			var res persistence.RebuildResult
			err := s.Rebuild(ctx, &persistence.RebuildOpts{Progress: p.update, Result: &res})
			p.finish()
			if err != nil {
				return fmt.Errorf("%w; the projections are as they were", err)
			}
			el := time.Since(start)
			a.warnSkipped(res)
			if asJSON {
				return writeJSON(a.stdout, rebuildReport(res, el))
			}
			from := fmt.Sprintf("%d events", res.Events)
			if res.Undecodable > 0 {
				from = fmt.Sprintf("%d of %d stored events", res.Events, res.Events+res.Undecodable)
			}
			var lacks []string
			if n := res.Undecodable; n == 1 {
				lacks = append(lacks, "1 row was left out")
			} else if n > 1 {
				lacks = append(lacks, fmt.Sprintf("%d rows were left out", n))
			}
			if n := res.Missing; n == 1 {
				lacks = append(lacks, "1 sequence is missing")
			} else if n > 1 {
				lacks = append(lacks, fmt.Sprintf("%d sequences are missing", n))
			}
			tail := "."
			if len(lacks) > 0 {
				tail = "; " + strings.Join(lacks, " and ") + "."
			}
			fmt.Fprintf(a.stdout, "Rebuilt the projections from %s in %s (%s events/s)%s\n",
				from, el.Round(time.Millisecond), rate(res.Events, el), tail)
			return nil
		}),
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// warnSkipped warns on stderr about what a rebuild left out.
func (a *app) warnSkipped(res persistence.RebuildResult) {
	if de := res.FirstUndecodable; res.Undecodable > 0 && de != nil {
		what := fmt.Sprintf("%d stored rows cannot be decoded and were left out of the projections, the first at sequence", res.Undecodable)
		them := "them"
		if res.Undecodable == 1 {
			what, them = "1 stored row cannot be decoded and was left out of the projections, at sequence", "it"
		}
		fmt.Fprintf(a.stderr, "peon-store: warning: %s %d (%s: %s); `peon-store verify` lists %s\n",
			what, de.Sequence, de.Type, oneLine(errString(de)), them)
	}
	if res.Missing == 1 {
		fmt.Fprintf(a.stderr, "peon-store: warning: 1 sequence is missing from the log: %d; `peon-store verify` reports the gap\n", res.FirstMissing)
	} else if res.Missing > 1 {
		fmt.Fprintf(a.stderr, "peon-store: warning: %d sequences are missing from the log, the first %d; `peon-store verify` reports the gaps\n",
			res.Missing, res.FirstMissing)
	}
}

func (a *app) verifyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the log's integrity and that the projections equal a rebuild",
		Long: `verify runs the database's own integrity check (SQLite's integrity_check; on
PostgreSQL amcheck, when the database has that extension), then checks that
sequences run without gaps, each stream's versions run 1, 2, 3…, every
payload decodes, and the projection tables equal a rebuild from the log. It
changes nothing. It exits with status 1 and lists each problem when the
store is not sound.`,
		Args: noArgs,
		RunE: a.withStore(readOnly, func(ctx context.Context, s *persistence.Store, _ []string) error {
			r, err := s.Verify(ctx)
			if err != nil {
				return err // Verify's error starts with "verify: "
			}
			if r.Integrity == "" {
				fmt.Fprintf(a.stderr, "peon-store: verify: %s\n", r.IntegrityNote)
			}
			if asJSON {
				if err := writeJSON(a.stdout, verifyReport(r)); err != nil {
					return err
				}
			}
			if r.OK() {
				if asJSON {
					return nil
				}
				checked := ""
				if r.Integrity != "" {
					checked = r.Integrity + " finds no damage, "
				}
				gaps := "sequences and versions without gaps"
				if r.Pruned > 0 {
					gaps += fmt.Sprintf(" but the %d events of pruned streams", r.Pruned)
				}
				fmt.Fprintf(a.stdout, "OK: %d events in %d streams; %s%s, every payload decodes, the projections equal a rebuild.\n",
					r.Events, r.Streams, checked, gaps)
				return nil
			}
			where := "listed above"
			if asJSON {
				where = "in the report"
			} else {
				fmt.Fprintf(a.stdout, "%d events in %d streams; %d problem%s:\n", r.Events, r.Streams, len(r.Problems), plural(len(r.Problems)))
				for _, p := range r.Problems {
					fmt.Fprintf(a.stdout, "  %s\n", oneLine(p.String()))
				}
			}
			if r.Damaged() {
				return fmt.Errorf("verify: the database is damaged (%d problem%s %s); restore it from a backup, or export what still reads into a new store",
					len(r.Problems), plural(len(r.Problems)), where)
			}
			return fmt.Errorf("verify: the store is not sound (%d problem%s %s); `peon-store rebuild` repairs projection problems, log problems need a repair by hand",
				len(r.Problems), plural(len(r.Problems)), where)
		}),
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
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
