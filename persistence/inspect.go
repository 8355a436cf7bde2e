package persistence

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"
)

// revisionTableName is the atlas CLI's revision table.
const revisionTableName = "atlas_schema_revisions"

// schemaState is what a read of a database's schema found: its tables and
// what its atlas_schema_revisions records of this build's migrations.
type schemaState struct {
	tables  []string            // the tables and views, sorted (SQLite's own excluded)
	applied map[string]bool     // versions recorded as applied, all known to this build
	pending []atlasmigrate.File // files of this build not applied, in order
	// foreign are the recorded versions when this build knows none of
	// them: another schema's atlas migrations.
	foreign []string
}

// inspect reads the schema of the database q reaches and checks what it
// records against files, as migrating would: it changes nothing and takes
// no lock. A database written by a newer build, a migration that failed
// half-way and one applied with other contents are ErrMigration.
func inspect(ctx context.Context, q querier, d dialect, files []atlasmigrate.File, sums atlasmigrate.HashFile) (schemaState, error) {
	st := schemaState{applied: map[string]bool{}}
	var err error
	if st.tables, err = listTables(ctx, q, d); err != nil {
		return st, fmt.Errorf("read the schema: %w", err)
	}
	var revs []revision
	if slices.Contains(st.tables, revisionTableName) {
		if revs, err = readRevisions(ctx, q, d); err != nil {
			return st, err
		}
	}
	known := make(map[string]atlasmigrate.File, len(files))
	for _, f := range files {
		known[f.Version()] = f
	}
	if len(revs) > 0 && !slices.ContainsFunc(revs, func(r revision) bool { _, ok := known[r.version]; return ok }) {
		for _, r := range revs {
			st.foreign = append(st.foreign, r.version)
		}
		return st, nil
	}
	for _, r := range revs {
		f, ok := known[r.version]
		if !ok {
			return st, fmt.Errorf("%w: the database records migration %s, which this build does not have: it was written by a newer peon; upgrade peon to open it", ErrMigration, r.version)
		}
		if r.errText != "" || r.applied < r.total {
			return st, fmt.Errorf("%w: migration %s failed earlier (%d of %d statements applied: %s); repair the database by hand, then delete its row from atlas_schema_revisions", ErrMigration, r.version, r.applied, r.total, r.errText)
		}
		if want, _ := sums.SumByName(f.Name()); want != r.hash {
			return st, fmt.Errorf("%w: migration %s was applied with other contents than this build's; the database and this build disagree on its schema", ErrMigration, r.version)
		}
		st.applied[r.version] = true
	}
	for _, f := range files {
		if !st.applied[f.Version()] {
			st.pending = append(st.pending, f)
		}
	}
	return st, nil
}

// empty reports whether the database holds nothing of anyone's: no table
// but perhaps an empty revision table.
func (st schemaState) empty() bool {
	return len(st.applied) == 0 && len(st.foreign) == 0 &&
		!slices.ContainsFunc(st.tables, func(t string) bool { return t != revisionTableName })
}

// refuse returns the *NotStoreError for a database that is not a peon
// store, nil for a store or an empty database. With adopt, a database of
// other tables is taken unless peon's pending migrations would create a
// table of the same name.
func (st schemaState) refuse(adopt bool) error {
	if len(st.foreign) > 0 {
		return &NotStoreError{Tables: st.tables, Revisions: st.foreign}
	}
	if len(st.applied) > 0 || st.empty() {
		return nil
	}
	e := &NotStoreError{Tables: st.tables, Adopting: adopt}
	created := createdTables(st.pending)
	for _, t := range st.tables {
		if created[t] {
			e.Collide = append(e.Collide, t)
		}
	}
	if adopt && len(e.Collide) == 0 {
		return nil
	}
	return e
}

// createTableRE finds the table a CREATE TABLE statement of a migration
// file creates, quoted as either dialect quotes it.
var createTableRE = regexp.MustCompile("(?i)^\\s*CREATE\\s+TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?[`\"]?([^`\"\\s(]+)")

// createdTables returns the tables the CREATE TABLE statements of files
// create.
func createdTables(files []atlasmigrate.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		stmts, err := f.Stmts()
		if err != nil {
			continue // migrating reports it
		}
		for _, s := range stmts {
			if m := createTableRE.FindStringSubmatch(s); m != nil {
				out[m[1]] = true
			}
		}
	}
	return out
}

// listTables returns the names of the tables and views of the database
// (on PostgreSQL, of the first schema of the search_path), sorted.
func listTables(ctx context.Context, q querier, d dialect) ([]string, error) {
	rows, err := q.QueryContext(ctx, d.TablesQuery())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// NotStoreError says why a database is not a peon store, and what it
// holds. It matches ErrNotStore.
type NotStoreError struct {
	// Tables are the database's tables and views; none when it is empty.
	Tables []string
	// Revisions are the migrations its atlas_schema_revisions records,
	// when they are another schema's: peon knows none of them.
	Revisions []string
	// Collide are the Tables that peon's migrations would create too.
	Collide []string
	// Adopting is true when Options.Adopt was given (and Collide stopped
	// it).
	Adopting bool
	// Absent is true for a SQLite file that does not exist, opened
	// read-only.
	Absent bool
}

func (e *NotStoreError) Error() string {
	switch {
	case e.Absent:
		return "not a peon store: the file does not exist"
	case len(e.Revisions) > 0:
		return fmt.Sprintf("not a peon store: its atlas_schema_revisions records the migrations %s of another schema and none of peon's; use another database (on PostgreSQL, another schema)", nameList(e.Revisions))
	case len(e.Tables) == 0:
		return "not a peon store: the database is empty"
	case e.Adopting:
		return fmt.Sprintf("not a peon store: it holds the tables %s and no peon migrations, and peon cannot adopt it: its own %s would collide with peon's; use another database", nameList(e.Tables), nameList(e.Collide))
	}
	msg := fmt.Sprintf("not a peon store: it holds the tables %s and no peon migrations (another application's database?)", nameList(e.Tables))
	if len(e.Collide) > 0 {
		return msg + "; use another database"
	}
	return msg + "; open it with Options.Adopt to add peon's tables beside them, or use another database"
}

// Is reports whether target is ErrNotStore.
func (e *NotStoreError) Is(target error) bool { return target == ErrNotStore }

// nameList joins names for a message, at most ten of them.
func nameList(names []string) string {
	const most = 10
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
