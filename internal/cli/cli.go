// Package cli is peon-store, the operator's command line for a peon store:
// migrate it, look into it, verify and rebuild it, move it with export and
// import, and run a demo session. cmd/peon-store only calls Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/peonhq/peon/internal/testhook"
	"github.com/peonhq/peon/persistence"
)

// Exit codes of Run.
const (
	ExitOK      = 0
	ExitFailure = 1 // a command failed, or verify found problems
	ExitUsage   = 2 // a mistake on the command line
	ExitPending = 3 // migrate status: the store has migrations to apply
)

// EnvDB is the environment variable that names the default store.
const EnvDB = "PEON_DB"

// app is one run of the command line: its streams, environment and flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	db             string // --db

	// terminal overrides the detection of a terminal on stdout and stderr
	// (for tests); nil means detect.
	terminal *bool
	width    int // terminal width override, 0 means detect
	// migrations overrides the embedded migration directory of the stores
	// it opens (for tests of a store that lacks a migration); nil means
	// the embedded one.
	migrations atlasmigrate.Dir
}

// Run runs peon-store with args (without the program name) and returns
// the process's exit code. It never panics on a user's mistake: errors are
// one line on stderr.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var (
		ue *usageError
		ce *codeError
	)
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command "):
		fmt.Fprintf(a.stderr, "peon-store: %s (see `%s --help`)\n", oneLine(err.Error()), cmd.CommandPath())
		return ExitUsage
	case errors.Is(err, errSilent):
		return ExitFailure
	case errors.As(err, &ce):
		fmt.Fprintf(a.stderr, "peon-store: %s\n", oneLine(ce.err.Error()))
		return ce.code
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(a.stderr, "peon-store: interrupted")
		return ExitFailure
	}
	fmt.Fprintf(a.stderr, "peon-store: %s\n", oneLine(err.Error()))
	return ExitFailure
}

// errSilent ends a command with a failure it has already reported.
var errSilent = errors.New("failed")

// codeError ends a command with its own exit code.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// usageError is a mistake on the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// oneLine folds a multi-line error into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "peon-store",
		Short: "Look into, move and repair a peon event store",
		Long: `peon-store migrates, inspects, verifies, rebuilds, exports and imports a peon
event store, and writes a demo session into one.

The store is a SQLite file or a PostgreSQL database, chosen by --db; without
it, $PEON_DB, else peon.db in $XDG_DATA_HOME/peon (~/.local/share/peon),
created on first use.`,
		Example: `  peon-store demo
  peon-store threads
  peon-store thread <thread-id>
  peon-store events --type turn.failed
  peon-store export -o backup.jsonl && peon-store --db copy.db import backup.jsonl`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print the version and the VCS revision peon-store was built from")
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().StringVar(&a.db, "db", "", "the store: a SQLite file path, sqlite://PATH or postgres://URL (default $PEON_DB, else ~/.local/share/peon/peon.db)")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		a.migrateCommand(),
		a.demoCommand(),
		a.eventsCommand(),
		a.projectsCommand(),
		a.threadsCommand(),
		a.threadCommand(),
		a.rebuildCommand(),
		a.verifyCommand(),
		a.statsCommand(),
		a.compactCommand(),
		a.pruneCommand(),
		a.exportCommand(),
		a.importCommand(),
	)
	return root
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.Name(), args[0])
	}
	return nil
}

// dsn returns the store the command works on and whether it is the
// default location.
func (a *app) dsn() (dsn string, isDefault bool, err error) {
	if a.db != "" {
		return a.db, false, nil
	}
	if v := a.getenv(EnvDB); v != "" {
		return v, false, nil
	}
	dir, err := dataDir(a.getenv)
	if err != nil {
		return "", false, err
	}
	return filepath.Join(dir, persistence.DBFileName), true, nil
}

// dataDir returns peon's directory in the user's data directory:
// $XDG_DATA_HOME/peon, else ~/.local/share/peon.
func dataDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "peon"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("no default store: the home directory is unknown (%v); pass --db or set $%s", err, EnvDB)
		}
	}
	return filepath.Join(home, ".local", "share", "peon"), nil
}

// openMode says how open opens the store, and what it does with one that
// does not exist yet.
type openMode int

const (
	readOnly  openMode = iota // must exist; opened read-only: nothing in the database changes
	mustExist                 // refuse a store that does not exist (writing commands that need data)
	mayCreate                 // create it (writing commands)
)

// open opens the store of --db. A SQLite file that does not exist is
// created (its directory too, 0700, at the default location) for commands
// that write, and refused for those that read; readOnly opens with
// persistence.Options.ReadOnly, which refuses a database that is not a
// peon store or lacks migrations, changing nothing.
func (a *app) open(ctx context.Context, mode openMode) (*persistence.Store, error) {
	dsn, isDefault, err := a.dsn()
	if err != nil {
		return nil, err
	}
	t, err := persistence.ParseDSN(dsn)
	if err != nil {
		return nil, usagef("--db: %v", err)
	}
	if t.File() != "" {
		if _, err := os.Stat(t.File()); errors.Is(err, os.ErrNotExist) {
			if mode != mayCreate {
				return nil, fmt.Errorf("no store at %s: create one with `peon-store demo` or `peon-store migrate`, or pass --db", t.DSN)
			}
			if isDefault {
				s, err := persistence.OpenDir(ctx, filepath.Dir(t.DSN))
				return s, storeError(t, err)
			}
		}
	}
	s, err := persistence.OpenWith(testhook.WithMigrationDir(ctx, a.migrations), dsn, &persistence.Options{ReadOnly: mode == readOnly})
	return s, storeError(t, err)
}

// storeError rephrases the refusals of a database that is not a store, or
// not yet one a read-only command may read, for the command line.
func storeError(t persistence.Target, err error) error {
	var ne *persistence.NotStoreError
	switch {
	case errors.As(err, &ne) && len(ne.Tables) > 0 && len(ne.Revisions) == 0:
		return fmt.Errorf("%s is not a peon store: it holds the tables %s and no peon migrations; peon-store changed nothing; pass --db a peon store or a new file", t.Display, names(ne.Tables))
	case errors.As(err, &ne) && len(ne.Revisions) > 0:
		return fmt.Errorf("%s is not a peon store: its atlas_schema_revisions records another schema's migrations (%s); peon-store changed nothing; pass --db a peon store or a new file", t.Display, names(ne.Revisions))
	case errors.As(err, &ne) && !ne.Absent:
		return fmt.Errorf("%s is empty, not a peon store: create one with `peon-store migrate` or `peon-store demo`, or pass --db", t.Display)
	case errors.Is(err, persistence.ErrMigrationPending):
		return fmt.Errorf("%w (read-only commands change nothing)", err)
	}
	return err
}

// names joins names for a message, at most ten of them.
func names(ns []string) string {
	if len(ns) > 10 {
		return strings.Join(ns[:10], ", ") + fmt.Sprintf(" and %d more", len(ns)-10)
	}
	return strings.Join(ns, ", ")
}

// isTerminal reports whether w is a terminal.
func (a *app) isTerminal(w io.Writer) bool {
	if a.terminal != nil {
		return *a.terminal
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termWidth returns the width of the terminal w, or 0 when it is none.
func (a *app) termWidth(w io.Writer) int {
	if !a.isTerminal(w) {
		return 0
	}
	if a.width > 0 {
		return a.width
	}
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return 80
}

// withStore returns a cobra RunE that opens the store (mode says whether it
// must exist already), runs fn with it and closes it.
func (a *app) withStore(mode openMode, fn func(ctx context.Context, s *persistence.Store, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		s, err := a.open(ctx, mode)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(ctx, s, args)
	}
}
