package persistence

import (
	"context"
	"strconv"
)

// appendLockKey is the transaction-scoped advisory lock that serializes
// appenders on PostgreSQL, and migrateLockKey the one of migrations.
const (
	appendLockKey  = 0x70656f6e01 // "peon" 1
	migrateLockKey = 0x70656f6e02
	notifyChannel  = "peon_events"
)

// postgresDialect is the server engine, through pgx's database/sql driver.
//
// Appenders take a transaction-scoped advisory lock before they read the
// last sequence, so sequences are taken in commit order and a reader that
// resumes after the last sequence it saw cannot skip a transaction that
// commits late. See docs/ORDERING.md.
type postgresDialect struct{}

func (postgresDialect) name() string             { return "postgres" }
func (postgresDialect) entDialect() string       { return "postgres" }
func (postgresDialect) bind(query string) string { return bindDollar(query) }
func (postgresDialect) maxArgs() int             { return 65000 }

func (postgresDialect) lockAppend(ctx context.Context, tx querier) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.Itoa(appendLockKey)+")")
	return err
}

func (postgresDialect) lastSequence(ctx context.Context, tx querier) (int64, error) {
	return queryInt64(ctx, tx, "SELECT MAX(sequence) FROM events")
}

func (postgresDialect) notify(ctx context.Context, tx querier, head int64) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_notify('"+notifyChannel+"', $1)", strconv.FormatInt(head, 10))
	return err
}

func (postgresDialect) lockMigrate(ctx context.Context, tx querier) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.Itoa(migrateLockKey)+")")
	return err
}

// revisionTable is the table as the atlas CLI creates it on PostgreSQL.
func (postgresDialect) revisionTable() string {
	return `CREATE TABLE IF NOT EXISTS "atlas_schema_revisions" (` +
		`"version" character varying NOT NULL, "description" character varying NOT NULL, ` +
		`"type" bigint NOT NULL DEFAULT 2, "applied" bigint NOT NULL DEFAULT 0, ` +
		`"total" bigint NOT NULL DEFAULT 0, "executed_at" timestamptz NOT NULL, ` +
		`"execution_time" bigint NOT NULL, "error" text NULL, "error_stmt" text NULL, ` +
		`"hash" character varying NOT NULL, "partial_hashes" jsonb NULL, ` +
		`"operator_version" character varying NOT NULL, PRIMARY KEY ("version"))`
}
