package schemamigrate

import (
	"context"
	"fmt"
	"slices"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/sqlx"
)

// RevisionsTable is the atlas CLI's revision table.
const RevisionsTable = "atlas_schema_revisions"

// OperatorVersion is written to atlas_schema_revisions.operator_version
// for the migrations the runner applies (the atlas CLI writes its own
// name).
const OperatorVersion = "peon-persistence"

// ExecutedAtLayout is how the atlas CLI stores executed_at on SQLite, as
// text; a time.Time in another layout reads back as year 1 in the CLI.
const ExecutedAtLayout = "2006-01-02 15:04:05.999999999-07:00"

// cloudIdentifier is a row the atlas CLI may keep in its revision table
// that is not a migration.
const cloudIdentifier = ".atlas_cloud_identifier"

// Revision is a row of atlas_schema_revisions, as far as peon reads it.
type Revision struct {
	Version     string
	Description string
	Hash        string // the file's sum, without "h1:"
	Applied     int    // statements applied
	Total       int    // statements of the file
	Error       string // empty on success
	ExecutedAt  time.Time
}

// OK reports whether the migration was applied whole: no error, every
// statement applied.
func (r Revision) OK() bool { return r.Error == "" && r.Applied >= r.Total }

// ReadRevisions reads atlas_schema_revisions, if the table exists, in
// version order, without the atlas CLI's cloud identifier row.
func ReadRevisions(ctx context.Context, q sqlx.Querier, e Engine) ([]Revision, error) {
	tables, err := Tables(ctx, q, e)
	if err != nil || !slices.Contains(tables, RevisionsTable) {
		return nil, err
	}
	return readRevisions(ctx, q, e)
}

// readRevisions reads atlas_schema_revisions, which must exist.
func readRevisions(ctx context.Context, q sqlx.Querier, e Engine) ([]Revision, error) {
	rows, err := q.QueryContext(ctx, e.Bind(
		"SELECT version, description, hash, applied, total, COALESCE(error, ''), executed_at FROM atlas_schema_revisions WHERE version <> ? ORDER BY version"),
		cloudIdentifier)
	if err != nil {
		return nil, fmt.Errorf("read atlas_schema_revisions: %w", err)
	}
	defer rows.Close()
	var revs []Revision
	for rows.Next() {
		var (
			r          Revision
			executedAt any
		)
		if err := rows.Scan(&r.Version, &r.Description, &r.Hash, &r.Applied, &r.Total, &r.Error, &executedAt); err != nil {
			return nil, fmt.Errorf("read atlas_schema_revisions: %w", err)
		}
		r.ExecutedAt = parseExecutedAt(executedAt)
		revs = append(revs, r)
	}
	return revs, rows.Err()
}

// parseExecutedAt reads executed_at as the driver returns it: a time, or
// on SQLite the atlas CLI's text layout. It is zero when unreadable.
func parseExecutedAt(v any) time.Time {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case []byte:
		return parseExecutedAt(string(v))
	case string:
		for _, layout := range []string{ExecutedAtLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

// writeRevision records an applied file exactly as the atlas CLI does
// after a successful run: type 2 (executed), applied = total, no error,
// no partial hashes, execution_time in nanoseconds, executed_at as text
// in ExecutedAtLayout when textTime.
func writeRevision(ctx context.Context, q sqlx.Querier, e Engine, textTime bool, f atlasmigrate.File, hash string, stmts int, start time.Time) error {
	var executedAt any = start.UTC()
	if textTime {
		executedAt = start.UTC().Format(ExecutedAtLayout)
	}
	_, err := q.ExecContext(ctx, e.Bind(
		"INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version) "+
			"VALUES (?, ?, ?, ?, ?, ?, ?, '', '', ?, NULL, ?)"),
		f.Version(), f.Desc(), int(atlasmigrate.RevisionTypeExecute), stmts, stmts, executedAt,
		time.Since(start).Nanoseconds(), hash, OperatorVersion)
	if err != nil {
		return fmt.Errorf("migrate: record %s in atlas_schema_revisions: %w", f.Name(), err)
	}
	return nil
}
