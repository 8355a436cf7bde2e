package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) migrateCommand() *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the pending schema migrations",
		Long: `migrate applies the schema migrations of this build that the store has not
applied yet, each in its own transaction, and prints what it applied. The
commands that write (demo, import, rebuild) migrate a store they open; the
read-only ones (events, projects, threads, thread, verify, export, migrate
status) change nothing and refuse a store that lacks migrations: run this
one first. Run it too before starting several programs on a new database.

--dry-run prints the SQL of each migration it would apply, as SQL comments
and statements, and changes nothing: a store that does not exist is not
created.

It refuses a database written by a newer peon, and one that is not a peon
store (another application's database, whose tables it names).`,
		Example: `  peon-store migrate status || peon-store migrate
  peon-store migrate --dry-run > pending.sql`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, isDefault, err := a.dsn()
			if err != nil {
				return err
			}
			if dryRun {
				return a.migrateDryRun(cmd, dsn, asJSON)
			}
			if isDefault {
				if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
					return fmt.Errorf("migrate: create the data directory: %w", err)
				}
			}
			applied, err := persistence.Migrate(cmd.Context(), dsn)
			if err != nil {
				t, _ := persistence.ParseDSN(dsn)
				return fmt.Errorf("migrate: %w", storeError(t, err))
			}
			if asJSON {
				rep := migrateJSON{Migrations: make([]migrationJSON, len(applied))}
				for i, m := range applied {
					rep.Migrations[i] = migrationReport(m)
				}
				return writeJSON(a.stdout, rep)
			}
			if len(applied) == 0 {
				fmt.Fprintln(a.stdout, "The schema is up to date; nothing to apply.")
				return nil
			}
			for _, m := range applied {
				fmt.Fprintf(a.stdout, "applied %s %s\n", m.Version, m.Description)
			}
			fmt.Fprintf(a.stdout, "Applied %d migration%s.\n", len(applied), plural(len(applied)))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL it would apply and change nothing")
	addJSONFlag(cmd, &asJSON)
	cmd.AddCommand(a.migrateStatusCommand())
	return cmd
}

// migrateDryRun prints what migrate would apply to dsn.
func (a *app) migrateDryRun(cmd *cobra.Command, dsn string, asJSON bool) error {
	pending, err := persistence.PendingMigrations(cmd.Context(), dsn)
	if err != nil {
		return fmt.Errorf("migrate --dry-run: %w", err)
	}
	if asJSON {
		rep := migrateJSON{DryRun: true, Migrations: make([]migrationJSON, len(pending))}
		for i, m := range pending {
			rep.Migrations[i] = migrationJSON{Version: m.Version, Description: m.Description, SQL: m.SQL}
		}
		return writeJSON(a.stdout, rep)
	}
	if len(pending) == 0 {
		fmt.Fprintln(a.stdout, "The schema is up to date; nothing to apply.")
		return nil
	}
	for _, m := range pending {
		fmt.Fprintf(a.stdout, "-- %s (not applied: --dry-run)\n", m.Name)
		fmt.Fprint(a.stdout, m.SQL)
		if !strings.HasSuffix(m.SQL, "\n") {
			fmt.Fprintln(a.stdout)
		}
	}
	fmt.Fprintf(a.stdout, "-- %d migration%s would be applied; nothing was changed.\n", len(pending), plural(len(pending)))
	return nil
}

func (a *app) migrateStatusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether the store has applied them",
		Long: `status lists each migration of this build (version, description, applied or
pending, and when it was applied) without changing the store; a store that
does not exist yet has every migration pending. A migration the store records
but this build does not know was applied by a newer peon.

It exits with status 3 while migrations are pending, so that a script or a CI
job can gate on it; 0 when the store is up to date.`,
		Example: `  peon-store migrate status || peon-store migrate
  peon-store migrate status --json | jq .pending`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, _, err := a.dsn()
			if err != nil {
				return err
			}
			st, err := persistence.Migrations(cmd.Context(), dsn)
			if err != nil {
				t, _ := persistence.ParseDSN(dsn)
				return fmt.Errorf("migrate status: %w", storeError(t, err))
			}
			pending := 0
			for _, m := range st {
				if !m.Applied {
					pending++
				}
			}
			if asJSON {
				rep := statusJSON{Pending: pending, Migrations: make([]migrationJSON, len(st))}
				for i, m := range st {
					rep.Migrations[i] = migrationReport(m)
				}
				if err := writeJSON(a.stdout, rep); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tDESCRIPTION\tSTATUS\tEXECUTED AT")
				for _, m := range st {
					state, at := "pending", "-"
					if m.Applied {
						state = "applied"
						if !m.ExecutedAt.IsZero() {
							at = m.ExecutedAt.Format("2006-01-02 15:04:05Z07:00")
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Version, m.Description, state, at)
				}
				tw.Flush()
			}
			if pending > 0 {
				them := "them"
				if pending == 1 {
					them = "it"
				}
				return &codeError{ExitPending, fmt.Errorf("%d migration%s pending; apply %s with `peon-store migrate`", pending, plural(pending), them)}
			}
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
