package cli

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) statsCommand() *cobra.Command {
	var (
		o      persistence.StatsOpts
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show where the store's space goes, and what compaction and retention would remove",
		Long: `stats reads, from one snapshot, the events and payload bytes of each event
type, the largest streams, the size of the database (SQLite: the file, its
pages and free pages; PostgreSQL: the database) and of each of peon's
tables, and what compaction and retention would remove now: the deltas of
messages completed more than --compact-after ago (24h by default) that
would fold into one per message, and the streams of threads and projects
deleted or archived more than --prune-deleted-after / --prune-archived-after
ago (off by default). It changes nothing; it reads the whole log.`,
		Example: `  peon-store stats
  peon-store stats --largest 20 --prune-deleted-after 720h
  peon-store stats --json | jq .compaction`,
		Args: noArgs,
		RunE: a.withStore(readOnly, func(ctx context.Context, s *persistence.Store, _ []string) error {
			start := time.Now()
			st, err := s.StatsWith(ctx, &o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, statsReport(st, time.Since(start)))
			}
			return a.printStats(st)
		}),
	}
	cmd.Flags().IntVar(&o.Largest, "largest", persistence.DefaultLargestStreams, "how many of the largest streams to list")
	cmd.Flags().DurationVar(&o.Retention.CompactAfter, "compact-after", persistence.DefaultCompactAfter, "count the deltas of messages completed longer ago than this")
	cmd.Flags().DurationVar(&o.Retention.PruneDeletedAfter, "prune-deleted-after", 0, "count the streams of threads and projects deleted longer ago than this (0: off)")
	cmd.Flags().DurationVar(&o.Retention.PruneArchivedAfter, "prune-archived-after", 0, "count the streams of threads archived longer ago than this (0: off)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) printStats(st *persistence.Stats) error {
	out := a.stdout
	fmt.Fprintf(out, "%d events (%s of payload) in %d streams; head at sequence %d.\n\n", st.Events, size(st.Bytes), st.Streams, st.Head)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tEVENTS\tBYTES\tSHARE")
	for _, t := range st.Types {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Type, t.Events, size(t.Bytes), share(t.Bytes, st.Bytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe %d largest streams:\n\n", len(st.Largest))
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tEVENTS\tBYTES\tVERSION")
	for _, s := range st.Largest {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", s.Stream, s.Events, size(s.Bytes), s.Version)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	db := st.Database
	fmt.Fprintln(out)
	if db.PageSize > 0 {
		fmt.Fprintf(out, "Database: %s in %d pages of %d bytes, %d free (%s); file %s, write-ahead log %s.\n\n",
			size(db.Bytes), db.PageCount, db.PageSize, db.FreePages, size(db.FreePages*db.PageSize), size(db.FileBytes), size(db.WALBytes))
	} else {
		fmt.Fprintf(out, "Database: %s.\n\n", size(db.Bytes))
	}
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tTABLE BYTES\tINDEX BYTES\tTOTAL")
	for _, t := range db.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Table, size(t.TableBytes), size(t.IndexBytes), size(t.TotalBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := st.Compaction
	fmt.Fprintf(out, "\nCompaction (messages completed over %s ago): would fold the deltas of %d messages into one each, removing %d events (%s of the log).\n",
		ago(cmp.Or(st.Retention.CompactAfter, persistence.DefaultCompactAfter)), c.Messages, c.Events, share(c.Events, st.Events))
	fmt.Fprintf(out, "Deleted threads and projects: %s.\n", streamSet(st.Deleted))
	fmt.Fprintf(out, "Archived threads: %s.\n", streamSet(st.Archived))
	p := st.Prunable
	var rules []string
	if d := st.Retention.PruneDeletedAfter; d > 0 {
		rules = append(rules, "deleted over "+ago(d)+" ago")
	}
	if d := st.Retention.PruneArchivedAfter; d > 0 {
		rules = append(rules, "archived over "+ago(d)+" ago")
	}
	if len(rules) == 0 {
		fmt.Fprintln(out, "Retention: off (--prune-deleted-after, --prune-archived-after); it would prune nothing.")
		return nil
	}
	fmt.Fprintf(out, "Retention (%s): would prune %s.\n", joinOr(rules), streamSet(p.StreamSet))
	return nil
}

// streamSet says "2 streams, 51 events, 7.2 KiB".
func streamSet(s persistence.StreamSet) string {
	return fmt.Sprintf("%d stream%s, %d event%s, %s", s.Streams, plural(int(s.Streams)), s.Events, plural(int(s.Events)), size(s.Bytes))
}

func joinOr(s []string) string {
	if len(s) == 2 {
		return s[0] + " or " + s[1]
	}
	return s[0]
}

// ago formats a policy's age: in days when whole days, else as a
// duration without its zero tail ("36h", "90m").
func ago(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// size formats bytes in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// share formats part of whole as a percentage.
func share(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(part)*100/float64(whole))
}

// statsJSON is the report of stats --json.
type statsJSON struct {
	At             string              `json:"at"`
	Head           int64               `json:"head"`
	Events         int64               `json:"events"`
	Bytes          int64               `json:"bytes"`
	Streams        int64               `json:"streams"`
	Types          []statsTypeJSON     `json:"types"`
	Largest        []statsStreamJSON   `json:"largest"`
	Database       statsDatabaseJSON   `json:"database"`
	Compaction     statsCompactionJSON `json:"compaction"`
	Deleted        statsSetJSON        `json:"deleted"`
	Archived       statsSetJSON        `json:"archived"`
	Prunable       statsPruneJSON      `json:"prunable"`
	ElapsedSeconds float64             `json:"elapsed_seconds"`
}

type statsTypeJSON struct {
	Type   string `json:"type"`
	Events int64  `json:"events"`
	Bytes  int64  `json:"bytes"`
}

type statsStreamJSON struct {
	Stream  string `json:"stream"`
	Events  int64  `json:"events"`
	Bytes   int64  `json:"bytes"`
	Version int64  `json:"version"`
}

type statsDatabaseJSON struct {
	Bytes     int64            `json:"bytes"`
	FileBytes int64            `json:"file_bytes"`
	WALBytes  int64            `json:"wal_bytes"`
	PageSize  int64            `json:"page_size"`
	PageCount int64            `json:"page_count"`
	FreePages int64            `json:"free_pages"`
	Tables    []statsTableJSON `json:"tables"`
}

type statsTableJSON struct {
	Table      string `json:"table"`
	TableBytes int64  `json:"table_bytes"`
	IndexBytes int64  `json:"index_bytes"`
	TotalBytes int64  `json:"total_bytes"`
}

type statsCompactionJSON struct {
	Before   string `json:"before"`
	Messages int64  `json:"messages"`
	Events   int64  `json:"events"`
}

type statsSetJSON struct {
	Streams int64 `json:"streams"`
	Events  int64 `json:"events"`
	Bytes   int64 `json:"bytes"`
}

type statsPruneJSON struct {
	Streams        int64   `json:"streams"`
	Events         int64   `json:"events"`
	Bytes          int64   `json:"bytes"`
	DeletedBefore  *string `json:"deleted_before"`  // null when off
	ArchivedBefore *string `json:"archived_before"` // null when off
}

func statsReport(st *persistence.Stats, elapsed time.Duration) statsJSON {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	opt := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := stamp(t)
		return &s
	}
	set := func(s persistence.StreamSet) statsSetJSON { return statsSetJSON{s.Streams, s.Events, s.Bytes} }
	j := statsJSON{At: stamp(st.At), Head: st.Head, Events: st.Events, Bytes: st.Bytes, Streams: st.Streams,
		Types: []statsTypeJSON{}, Largest: []statsStreamJSON{},
		Database: statsDatabaseJSON{Bytes: st.Database.Bytes, FileBytes: st.Database.FileBytes, WALBytes: st.Database.WALBytes,
			PageSize: st.Database.PageSize, PageCount: st.Database.PageCount, FreePages: st.Database.FreePages, Tables: []statsTableJSON{}},
		Compaction: statsCompactionJSON{Before: stamp(st.Compaction.Before), Messages: st.Compaction.Messages, Events: st.Compaction.Events},
		Deleted:    set(st.Deleted), Archived: set(st.Archived),
		Prunable: statsPruneJSON{Streams: st.Prunable.Streams, Events: st.Prunable.Events, Bytes: st.Prunable.Bytes,
			DeletedBefore: opt(st.Prunable.DeletedBefore), ArchivedBefore: opt(st.Prunable.ArchivedBefore)},
		ElapsedSeconds: elapsed.Seconds()}
	for _, t := range st.Types {
		j.Types = append(j.Types, statsTypeJSON{t.Type, t.Events, t.Bytes})
	}
	for _, s := range st.Largest {
		j.Largest = append(j.Largest, statsStreamJSON{s.Stream, s.Events, s.Bytes, s.Version})
	}
	for _, t := range st.Database.Tables {
		j.Database.Tables = append(j.Database.Tables, statsTableJSON{t.Table, t.TableBytes, t.IndexBytes, t.TotalBytes})
	}
	return j
}
