package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) exportCommand() *cobra.Command {
	var (
		out    string
		asJSON bool
	)
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
when complete, with mode 0600; a destination that is a directory, or in a
directory that does not exist or cannot be written, is refused before the
store is opened. With -o, --json prints a report of the export on stdout.`,
		Example: `  peon-store export -o backup.jsonl
  peon-store export | gzip > backup.jsonl.gz`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if out == "" || out == "-" {
				if asJSON {
					return usagef("--json reports on an export to a file (-o); without -o the export itself is JSON Lines on stdout")
				}
				s, err := a.open(ctx, readOnly)
				if err != nil {
					return err
				}
				defer s.Close()
				_, err = s.Export(ctx, a.stdout, nil)
				return err
			}
			tmp, err := createBeside(out)
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name()) // after a successful rename, a no-op
			defer tmp.Close()           // after the Close below, a no-op
			s, err := a.open(ctx, readOnly)
			if err != nil {
				return err
			}
			defer s.Close()
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
			if asJSON {
				return writeJSON(a.stdout, exportJSON{Events: n, File: out, ElapsedSeconds: el.Seconds()})
			}
			fmt.Fprintf(a.stderr, "Exported %d events to %s in %s (%s events/s).\n", n, out, el.Round(time.Millisecond), rate(n, el))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this `FILE` instead of stdout")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// createBeside checks the destination of export -o, before any work, and
// creates the temporary file the export is written to, in the same
// directory so that it can be renamed into place.
func createBeside(out string) (*os.File, error) {
	info, err := os.Stat(out)
	switch {
	case err == nil && info.IsDir():
		return nil, usagef("--output %s: is a directory; name a file in it, such as %s", out, filepath.Join(out, "backup.jsonl"))
	case err == nil && !info.Mode().IsRegular():
		return nil, usagef("--output %s: is not a regular file; export writes a file beside it and renames it into place", out)
	case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return nil, usagef("--output %s: %v", out, err)
	}
	dir := filepath.Dir(out)
	info, err = os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usagef("--output %s: directory %s does not exist", out, dir)
	case err != nil:
		return nil, usagef("--output %s: %v", out, err)
	case !info.IsDir():
		return nil, usagef("--output %s: %s is not a directory", out, dir)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, usagef("--output %s: cannot write in %s: %v", out, dir, err)
	}
	return tmp, nil
}

func (a *app) importCommand() *cobra.Command {
	var force, asJSON bool
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
			res, err := s.Import(ctx, in, &persistence.ImportOpts{Force: force, Progress: p.update})
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
			if asJSON {
				return writeJSON(a.stdout, importJSON{Events: res.Events, FirstSequence: res.First, LastSequence: res.Last,
					Projected: res.Projected, ElapsedSeconds: el.Seconds()})
			}
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
	addJSONFlag(cmd, &asJSON)
	return cmd
}
