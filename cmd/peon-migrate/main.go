// Command peon-migrate writes and checks the Atlas migration directories
// from the ent schemas. It is run by `task migrate:diff` and `task verify`.
//
//	peon-migrate diff NAME   write migrations/<dialect>/<timestamp>_NAME.sql
//	peon-migrate ddl         write migrations/schema/<dialect>.sql, the desired state
//	peon-migrate check       fail when a directory or a desired-state file is out of step
//	peon-migrate hash        rewrite each atlas.sum after a hand edit of a new migration
//	peon-migrate lint        replay each directory and flag destructive changes
//
// The desired-state files are what atlas.hcl's envs sqlite and postgres
// diff against, so the community atlas CLI (which has no ent://) works.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peonhq/peon/internal/migrategen"
)

func main() {
	dialects := flag.String("dialect", "all", "sqlite, postgres or all (postgres needs $"+migrategen.DevPostgresEnv+")")
	root := flag.String("dir", "migrations", "the directory holding one migration directory per dialect")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: peon-migrate [-dialect D] [-dir DIR] diff NAME | ddl | check | hash | lint\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(context.Background(), *dialects, *root, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "peon-migrate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dialects, root string, args []string) error {
	names := migrategen.Dialects
	if dialects != "all" {
		names = []string{dialects}
	}
	if len(args) == 0 {
		flag.Usage()
		return fmt.Errorf("missing command")
	}
	for _, d := range names {
		dir := filepath.Join(root, d)
		// The desired state needs no database: check and write it for
		// every dialect, before postgres may be skipped below.
		switch {
		case args[0] == "ddl" && len(args) == 1:
			changed, err := migrategen.WriteDDL(ctx, d, root)
			if err != nil {
				return err
			}
			if changed {
				fmt.Printf("%s: written from ent/schema\n", migrategen.DDLPath(root, d))
			} else {
				fmt.Printf("%s: no changes\n", migrategen.DDLPath(root, d))
			}
			continue
		case args[0] == "hash" && len(args) == 1:
			if err := migrategen.Hash(dir); err != nil {
				return err
			}
			fmt.Printf("%s: atlas.sum rewritten\n", dir)
			continue
		case args[0] == "check" && len(args) == 1:
			if err := migrategen.CheckDDL(ctx, d, root); err != nil {
				return err
			}
			fmt.Printf("%s: in step with ent/schema\n", migrategen.DDLPath(root, d))
		}
		if d == "postgres" && os.Getenv(migrategen.DevPostgresEnv) == "" && dialects == "all" && args[0] != "diff" {
			fmt.Fprintf(os.Stderr, "peon-migrate: skipping postgres: $%s is not set\n", migrategen.DevPostgresEnv)
			continue
		}
		switch {
		case args[0] == "diff" && len(args) == 2:
			changed, err := migrategen.Diff(ctx, d, dir, args[1])
			if err != nil {
				return err
			}
			if changed {
				fmt.Printf("%s: wrote a new migration\n", dir)
			} else {
				fmt.Printf("%s: no changes\n", dir)
			}
		case args[0] == "check" && len(args) == 1:
			if err := migrategen.Check(ctx, d, dir); err != nil {
				return err
			}
			fmt.Printf("%s: in step with ent/schema\n", dir)
		case args[0] == "lint" && len(args) == 1:
			findings, err := migrategen.Lint(ctx, d, dir)
			if err != nil {
				return err
			}
			for _, f := range findings {
				fmt.Println(f)
			}
			if len(findings) > 0 {
				return fmt.Errorf("%s: %d finding(s); mark an intended change with `-- atlas:nolint destructive`", dir, len(findings))
			}
			fmt.Printf("%s: sum valid, every file applies, nothing destructive\n", dir)
		default:
			flag.Usage()
			return fmt.Errorf("bad command %q", args)
		}
	}
	return nil
}
