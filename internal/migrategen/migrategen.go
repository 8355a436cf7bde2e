// Package migrategen writes and checks the Atlas migration directories
// from the ent schemas with the Atlas Go library, for build machines that
// have no `atlas` binary, and writes the desired-state DDL per dialect
// (migrations/schema/<dialect>.sql) that lets an `atlas` binary without
// ent:// (the community build) diff them. It is the engine of
// `task migrate:diff`, `task schema:ddl`, `task migrate:lint` and the
// migration half of `task verify`.
package migrategen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for a PostgreSQL dev database
	_ "modernc.org/sqlite"             // the "sqlite" driver for the SQLite dev database

	entmigrate "github.com/peonhq/peon/ent/migrate"
)

// DevPostgresEnv names the variable that holds the URL of a throwaway
// PostgreSQL database used as the dev database for the postgres dialect.
const DevPostgresEnv = "PEON_DEV_POSTGRES_URL"

// Dialects lists the dialects that have a migration directory.
var Dialects = []string{"sqlite", "postgres"}

// devDB opens the dev database of a dialect: a private in-memory SQLite,
// or the PostgreSQL database named by $PEON_DEV_POSTGRES_URL, emptied of
// everything in its public schema.
func devDB(ctx context.Context, name string) (*sql.DB, string, error) {
	switch name {
	case "sqlite":
		db, err := sql.Open("sqlite", "file:dev?mode=memory&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, "", err
		}
		db.SetMaxOpenConns(1)
		return db, dialect.SQLite, nil
	case "postgres":
		url := os.Getenv(DevPostgresEnv)
		if url == "" {
			return nil, "", fmt.Errorf("set %s to an empty, throwaway PostgreSQL database to diff the postgres dialect", DevPostgresEnv)
		}
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, "", err
		}
		db.SetMaxOpenConns(1)
		if _, err := db.ExecContext(ctx, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"); err != nil {
			db.Close()
			return nil, "", fmt.Errorf("reset dev database: %w", err)
		}
		return db, dialect.Postgres, nil
	}
	return nil, "", fmt.Errorf("unknown dialect %q (want one of %v)", name, Dialects)
}

// entTables serializes ent's readers of entmigrate.Tables: its schema
// diff and DDL fill in fields of those shared tables as they go (e.g.
// setupTables), so two at once race (seen by -race with TestDDL and
// TestCheckViews in parallel).
var entTables sync.Mutex

// Diff writes a new migration file named name into dir for the dialect,
// holding what the ent schemas need beyond what dir already creates, and
// updates dir's atlas.sum. It reports false when there was nothing to write.
func Diff(ctx context.Context, dialectName, dir, name string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	local, err := atlasmigrate.NewLocalDir(dir)
	if err != nil {
		return false, err
	}
	if err := atlasmigrate.Validate(local); err != nil {
		return false, fmt.Errorf("%s: %w (regenerate atlas.sum only if the edit was intended)", dir, err)
	}
	db, entDialect, err := devDB(ctx, dialectName)
	if err != nil {
		return false, err
	}
	defer db.Close()
	m, err := schema.NewMigrate(entsql.OpenDB(entDialect, db),
		schema.WithDir(viewless{local}),
		schema.WithDialect(entDialect),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithFormatter(atlasmigrate.DefaultFormatter),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
		schema.WithErrNoPlan(true),
	)
	if err != nil {
		return false, err
	}
	entTables.Lock()
	err = m.NamedDiff(ctx, name, entmigrate.Tables...)
	entTables.Unlock()
	if errors.Is(err, atlasmigrate.ErrNoPlan) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("diff %s: %w", dialectName, err)
	}
	return true, nil
}

// Check reports an error when dir is not in step with the ent schemas: its
// atlas.sum does not match its files, a file does not apply to an empty
// database, the schemas need a change that no file makes, or the views
// it creates are not Views (see CheckViews). It writes
// nothing to dir: the diff runs on a copy.
func Check(ctx context.Context, dialectName, dir string) error {
	tmp, err := os.MkdirTemp("", "peon-migrate-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	changed, err := Diff(ctx, dialectName, tmp, "drift")
	if err != nil {
		return err
	}
	if changed {
		return fmt.Errorf("%s is behind the ent schemas: run `task migrate:diff NAME=<change>`", dir)
	}
	return CheckViews(ctx, dialectName, dir)
}
