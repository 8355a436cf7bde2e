package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) pruneCommand() *cobra.Command {
	var (
		deletedBefore, archivedBefore string
		deletedAge, archivedAge       time.Duration
		dryRun, vacuum, asJSON        bool
		archive                       string
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove the streams of threads and projects deleted or archived long ago",
		Long: `prune removes the streams of threads and projects deleted before a cut-off
(--deleted-before T or --deleted-older-than D) and of threads archived
before one (--archived-before T or --archived-older-than D), compared with
the at of their first deleting or archiving event, with their projection
rows. The threads of a pruned project go with it. It is what stats counts
as prunable under the same cut-offs.

Each pruned stream leaves a tombstone (its last version and sequence, its
events and bytes, when): verify counts its sequences as recorded gaps,
export and import carry it, and an append to the stream is refused. With
--archive FILE it first writes the streams' events to FILE (which must not
exist), in the export format: the archive imports into an empty store.
--dry-run lists what would go and changes nothing. It prunes one stream per
transaction, so other programs go on appending. The space comes back as
compact's does: a SQLite file created by this build gives its freed pages
back to the file system (incremental vacuum), an older one keeps them for
later writes unless --vacuum is given (a full VACUUM, which also turns the
file to incremental vacuum); on PostgreSQL autovacuum returns the rows'
space later, or --vacuum now.`,
		Example: `  peon-store prune --deleted-older-than 720h --dry-run
  peon-store prune --deleted-before 2026-11-01 --archived-older-than 2160h --archive pruned.jsonl
  peon-store prune --deleted-older-than 24h --json`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if deletedBefore != "" && deletedAge != 0 {
				return usagef("give --deleted-before or --deleted-older-than, not both")
			}
			if archivedBefore != "" && archivedAge != 0 {
				return usagef("give --archived-before or --archived-older-than, not both")
			}
			if deletedBefore == "" && deletedAge == 0 && archivedBefore == "" && archivedAge == 0 {
				return usagef("say what to prune: --deleted-before, --deleted-older-than, --archived-before or --archived-older-than")
			}
			if deletedAge < 0 || archivedAge < 0 {
				return usagef("an age is 0 or more")
			}
			return nil
		},
		RunE: a.withStore(mustExist, func(ctx context.Context, s *persistence.Store, _ []string) error {
			now := time.Now().UTC()
			opts := &persistence.PruneOpts{DryRun: dryRun, Vacuum: vacuum}
			var err error
			if opts.DeletedBefore, err = cutoff("deleted", deletedBefore, deletedAge, now); err != nil {
				return err
			}
			if opts.ArchivedBefore, err = cutoff("archived", archivedBefore, archivedAge, now); err != nil {
				return err
			}
			var f *os.File
			if archive != "" && !dryRun {
				f, err = os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if errors.Is(err, fs.ErrExist) {
					return usagef("--archive %s: exists; name a new file", archive)
				}
				if err != nil {
					return usagef("--archive %s: %v", archive, err)
				}
				opts.Archive = f
			}
			rep, err := s.Prune(ctx, opts)
			if f != nil {
				if cerr := f.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("prune: archive: %w", cerr)
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, pruneReport(rep, archive))
			}
			return a.printPrune(rep, archive)
		}),
	}
	cmd.Flags().StringVar(&deletedBefore, "deleted-before", "", "prune what was deleted before this `TIME` (RFC 3339, or a date: 2026-11-01)")
	cmd.Flags().DurationVar(&deletedAge, "deleted-older-than", 0, "prune what was deleted longer ago than this")
	cmd.Flags().StringVar(&archivedBefore, "archived-before", "", "prune threads archived before this `TIME`")
	cmd.Flags().DurationVar(&archivedAge, "archived-older-than", 0, "prune threads archived longer ago than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be pruned; change nothing")
	cmd.Flags().BoolVar(&vacuum, "vacuum", false, "give the space back to the file system at the end (SQLite: VACUUM; PostgreSQL: VACUUM of the log)")
	cmd.Flags().StringVar(&archive, "archive", "", "first write the pruned events to this new `FILE`, in the export format")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// cutoff is the time of --X-before (a time or a date) or now less
// --X-older-than; zero when neither is given.
func cutoff(what, at string, age time.Duration, now time.Time) (time.Time, error) {
	if age > 0 {
		return now.Add(-age), nil
	}
	if at == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, at); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef("invalid --%s-before %q: want a time such as 2026-11-01T09:00:00Z or a date such as 2026-11-01", what, at)
}

func (a *app) printPrune(rep *persistence.PruneReport, archive string) error {
	out := a.stdout
	verb := "Pruned"
	if rep.DryRun {
		verb = "Would prune"
	}
	fmt.Fprintf(out, "%s %d stream%s: %d event%s (%s of payload) and %d projection row%s.\n",
		verb, rep.Streams, plural(int(rep.Streams)), rep.Events, plural(int(rep.Events)), size(rep.Bytes), rep.ProjectionRows, plural(int(rep.ProjectionRows)))
	if len(rep.Tombstones) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tEVENTS\tBYTES\tLAST VERSION\tLAST SEQUENCE")
		for _, t := range rep.Tombstones {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", t.Stream, t.Events, size(t.Bytes), t.LastVersion, t.LastSequence)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(out)
	}
	if rep.DryRun {
		fmt.Fprintln(out, "Dry run: nothing was changed.")
		return nil
	}
	if archive != "" {
		fmt.Fprintf(out, "Archived %d event%s to %s first.\n", rep.Archived, plural(int(rep.Archived)), archive)
	}
	fmt.Fprintf(out, "Freed %s; the database gave back %s.\n", size(rep.BytesFreed), size(rep.BytesReclaimed))
	return nil
}

// pruneJSON is the report of prune --json.
type pruneJSON struct {
	DryRun         bool            `json:"dry_run"`
	DeletedBefore  *string         `json:"deleted_before"`
	ArchivedBefore *string         `json:"archived_before"`
	Streams        int64           `json:"streams"`
	Events         int64           `json:"events"`
	Bytes          int64           `json:"bytes"`
	ProjectionRows int64           `json:"projection_rows"`
	Archive        *string         `json:"archive"`
	Archived       int64           `json:"archived"`
	BytesFreed     int64           `json:"bytes_freed"`
	BytesReclaimed int64           `json:"bytes_reclaimed"`
	Tombstones     []tombstoneJSON `json:"tombstones"`
	ElapsedSeconds float64         `json:"elapsed_seconds"`
}

type tombstoneJSON struct {
	Stream       string `json:"stream"`
	LastVersion  int64  `json:"last_version"`
	LastSequence int64  `json:"last_sequence"`
	Events       int64  `json:"events"`
	Bytes        int64  `json:"bytes"`
	PrunedAt     string `json:"pruned_at"`
}

func pruneReport(rep *persistence.PruneReport, archive string) pruneJSON {
	opt := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.UTC().Format(time.RFC3339Nano)
		return &s
	}
	j := pruneJSON{DryRun: rep.DryRun, DeletedBefore: opt(rep.DeletedBefore), ArchivedBefore: opt(rep.ArchivedBefore),
		Streams: rep.Streams, Events: rep.Events, Bytes: rep.Bytes, ProjectionRows: rep.ProjectionRows,
		Archived: rep.Archived, BytesFreed: rep.BytesFreed, BytesReclaimed: rep.BytesReclaimed, Tombstones: []tombstoneJSON{}, ElapsedSeconds: rep.Elapsed.Seconds()}
	if archive != "" && !rep.DryRun {
		j.Archive = &archive
	}
	for _, t := range rep.Tombstones {
		j.Tombstones = append(j.Tombstones, tombstoneJSON{t.Stream, t.LastVersion, t.LastSequence, t.Events, t.Bytes, t.PrunedAt.UTC().Format(time.RFC3339Nano)})
	}
	return j
}
