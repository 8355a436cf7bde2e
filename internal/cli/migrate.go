package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
)

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the pending schema migrations",
		Long: `migrate applies the schema migrations of this build that the store has not
applied yet, each in its own transaction, and prints what it applied. The
commands that write (demo, import, rebuild) migrate a store they open; the
read-only ones (events, projects, threads, thread, verify, export, migrate
status) change nothing and refuse a store that lacks migrations: run this
one first. Run it too before starting several programs on a new database.

It refuses a database written by a newer peon, and one that is not a peon
store (another application's database, whose tables it names).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, isDefault, err := a.dsn()
			if err != nil {
				return err
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
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether the store has applied them",
		Long: `status lists each migration of this build (version, description, applied or
pending, and when it was applied) without changing the store; a store that
does not exist yet has every migration pending. A migration the store records
but this build does not know was applied by a newer peon.`,
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
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tDESCRIPTION\tSTATUS\tEXECUTED AT")
			pending := 0
			for _, m := range st {
				state, at := "pending", "-"
				if m.Applied {
					state = "applied"
					if !m.ExecutedAt.IsZero() {
						at = m.ExecutedAt.Format("2006-01-02 15:04:05Z07:00")
					}
				} else {
					pending++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Version, m.Description, state, at)
			}
			tw.Flush()
			if pending > 0 {
				fmt.Fprintf(a.stdout, "%d pending: run `peon-store migrate`.\n", pending)
			}
			return nil
		},
	})
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
