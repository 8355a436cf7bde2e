package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) exportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the log as JSON Lines",
		Long: `export writes the whole log, in sequence order, as JSON Lines: one event per
line with sequence, event_id, stream, version, type, schema_version,
occurred_at, recorded_at, command_id, correlation_id, causation_id and data
(the event's payload). The same log always gives the same bytes. It writes the events up
to the head at its start; appends that land meanwhile are left for the next
export.

With -o the file is written beside its destination and renamed into place
when complete, with mode 0600.`,
		Example: `  peon-store export -o backup.jsonl
  peon-store export | gzip > backup.jsonl.gz`,
		Args: noArgs,
		RunE: a.withStore(readOnly, func(ctx context.Context, s *persistence.Store, _ []string) error {
			if out == "" || out == "-" {
				_, err := s.Export(ctx, a.stdout, nil)
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer os.Remove(tmp.Name()) // after a successful rename, a no-op
			p := a.newProgress("Exporting")
			start := time.Now()
			n, err := s.Export(ctx, tmp, &persistence.ExportOpts{Progress: p.update})
			p.finish()
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Chmod(tmp.Name(), 0o600)
			}
			if err == nil {
				err = os.Rename(tmp.Name(), out)
			}
			if err != nil {
				return fmt.Errorf("export to %s: %w", out, err)
			}
			el := time.Since(start)
			fmt.Fprintf(a.stderr, "Exported %d events to %s in %s (%s events/s).\n", n, out, el.Round(time.Millisecond), rate(n, el))
			return nil
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this `FILE` instead of stdout")
	return cmd
}

func (a *app) importCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "import [FILE]",
		Short: "Read an export into an empty store",
		Long: `import reads the JSON Lines that export writes, from FILE or standard input,
into the store, keeping every sequence, id, version and time, with the
projections. It is all or nothing: a malformed line (reported with its
number), a full disk or Ctrl-C writes nothing. It reads and checks its input
without the write lock, staging it aside, and holds the lock only for the
transaction that moves the events in, so other programs go on writing
while the input comes. It refuses a store that already holds events unless
--force is given; then the imported sequences must follow the store's. If
another program appends to the store meanwhile, it writes nothing and says
so.`,
		Example: `  peon-store --db copy.db import backup.jsonl
  gunzip -c backup.jsonl.gz | peon-store --db copy.db import`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("import reads one FILE (or standard input), got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in, name := a.stdin, "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				in, name = f, args[0]
			}
			s, err := a.open(ctx, mayCreate)
			if err != nil {
				return err
			}
			defer s.Close()
			p := a.newProgress("Importing")
			start := time.Now()
			res, err := s.Import(ctx, in, &persistence.ImportOpts{Force: force, Progress: func(n int64) { p.update(n, 0) }})
			p.finish()
			var ie *persistence.ImportError
			switch {
			case errors.As(err, &ie):
				return fmt.Errorf("import from %s: line %d: %v; nothing was imported", name, ie.Line, ie.Err)
			case errors.Is(err, persistence.ErrNotEmpty):
				return fmt.Errorf("%w; import into a new --db, or pass --force to add the events after the store's", err)
			case err != nil:
				return err
			}
			el := time.Since(start)
			if res.Events == 0 {
				fmt.Fprintf(a.stdout, "Imported nothing: %s holds no events.\n", name)
				return nil
			}
			fmt.Fprintf(a.stdout, "Imported %d events (sequences %d to %d) into %s in %s (%s events/s); the projections caught up on %d events.\n",
				res.Events, res.First, res.Last, s.Target().Display, el.Round(time.Millisecond), rate(res.Events, el), res.Projected)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "import into a store that already holds events")
	return cmd
}
