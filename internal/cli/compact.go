package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) compactCommand() *cobra.Command {
	var (
		o      persistence.CompactOpts
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Fold the streamed deltas of old messages into one event per message",
		Long: `compact folds, for each message completed before the horizon, the
message.delta events between its message.added and its message.completed
into one message.delta carrying their text in order (the first delta stays,
the others are removed), and records each gap it leaves. The projections do
not change, nor does any stream's current version. The horizon is
--until (messages completed at or before that sequence) and --older-than
(completed longer ago than that); without either, messages completed more
than 24h ago. Other programs go on appending while it runs: it works in
short transactions. On SQLite a file created by this version gives its free
pages back at once; an older file needs --vacuum once. On PostgreSQL the
rows are left to autovacuum, or vacuumed now with --vacuum. See
docs/RETENTION.md for what a reader resuming inside a folded range sees.`,
		Example: `  peon-store compact
  peon-store compact --older-than 168h --vacuum
  peon-store compact --until 120000 --json`,
		Args: noArgs,
		RunE: a.withStore(mustExist, func(ctx context.Context, s *persistence.Store, _ []string) error {
			rep, err := s.Compact(ctx, &o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, compactReport(rep))
			}
			fmt.Fprintf(a.stdout, "Folded the deltas of %d message%s: %d events and %s of payload removed, %s given back, in %d transaction%s (%s).\n",
				rep.Messages, plural(int(rep.Messages)), rep.Events, size(rep.Bytes), size(rep.Reclaimed),
				rep.Compactions, plural(int(rep.Compactions)), rep.Elapsed.Round(time.Millisecond))
			return nil
		}),
	}
	cmd.Flags().Int64Var(&o.Until, "until", 0, "fold only messages completed at or before this sequence (0: no limit)")
	cmd.Flags().DurationVar(&o.OlderThan, "older-than", 0, "fold only messages completed longer ago than this (0: 24h unless --until is set)")
	cmd.Flags().BoolVar(&o.Vacuum, "vacuum", false, "give the space back with a full VACUUM (SQLite files older than incremental vacuum; PostgreSQL)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// compactJSON is the report of compact --json.
type compactJSON struct {
	Until          int64   `json:"until"`
	Before         *string `json:"before"`
	Messages       int64   `json:"messages"`
	Events         int64   `json:"events"`
	Bytes          int64   `json:"bytes"`
	Reclaimed      int64   `json:"reclaimed"`
	Compactions    int64   `json:"compactions"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

func compactReport(r *persistence.CompactReport) compactJSON {
	j := compactJSON{Until: r.Until, Messages: r.Messages, Events: r.Events, Bytes: r.Bytes,
		Reclaimed: r.Reclaimed, Compactions: r.Compactions, ElapsedSeconds: r.Elapsed.Seconds()}
	if !r.Before.IsZero() {
		b := r.Before.UTC().Format(time.RFC3339)
		j.Before = &b
	}
	return j
}
