package persistence

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/schemamigrate"
)

// emptyDB reports whether the database holds nothing of anyone's: no table
// but perhaps an empty revision table.
func emptyDB(st schemamigrate.State) bool {
	return len(st.Applied) == 0 && len(st.Foreign) == 0 &&
		!slices.ContainsFunc(st.Tables, func(t string) bool { return t != schemamigrate.RevisionsTable })
}

// refuseNotStore returns the *NotStoreError for a database that is not a peon
// store, nil for a store or an empty database. With adopt, a database of
// other tables is taken unless peon's pending migrations would create a
// table of the same name.
func refuseNotStore(st schemamigrate.State, adopt bool) error {
	if len(st.Foreign) > 0 {
		return &NotStoreError{Tables: st.Tables, Revisions: st.Foreign}
	}
	if len(st.Applied) > 0 || emptyDB(st) {
		return nil
	}
	e := &NotStoreError{Tables: st.Tables, Adopting: adopt}
	created := createdTables(st.Pending)
	for _, t := range st.Tables {
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
