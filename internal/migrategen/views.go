package migrategen

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/projector"
)

// View is a view that a migration creates by hand: ent has no views that
// the Atlas Go library can diff.
type View struct {
	Name string
	SQL  string // the CREATE VIEW statement, without its semicolon
}

// Views returns the views of the schema of a dialect, written once for
// every dialect (string_agg with ORDER BY is SQLite 3.44+ and PostgreSQL;
// ->> is SQLite 3.38+), with the projector's condition for a message's
// deltas as that dialect needs it. They belong to the desired state: DDL
// writes them after the tables, and Check fails when the views a
// migration directory creates are not exactly these.
func Views(dialectName string) []View {
	// deltas is the condition on a row e of events that makes it a delta
	// of the message m, the projector's own.
	deltas := projector.DeltasOf("events", "m", dialectName != "postgres")
	return []View{{
		Name: "projection_messages_live",
		// A streaming message's text is its stored text followed by the
		// text of its deltas, which stay in the log: the message.delta
		// events of its thread's stream after its message.added that
		// name it and its turn (projector.DeltasOf). Its last delta gives
		// its last_sequence and updated_at, found by reading the stream's
		// index backwards to the first that qualifies (the order of
		// stream_version, which in one stream is the sequence's). A
		// completed message's deltas are folded into its text.
		SQL: `CREATE VIEW projection_messages_live AS
SELECT m.message_id,
  CASE WHEN m.streaming THEN COALESCE((SELECT e.sequence FROM events e
    WHERE ` + deltas + ` ORDER BY e.stream_version DESC LIMIT 1), m.last_sequence) ELSE m.last_sequence END AS last_sequence,
  m.thread_id, m.turn_id, m.role,
  CASE WHEN m.streaming THEN m.text || COALESCE((SELECT string_agg(e.payload ->> 'delta', '' ORDER BY e.sequence)
    FROM events e WHERE ` + deltas + `), '') ELSE m.text END AS text,
  m.streaming, m.added_sequence, m.created_at,
  CASE WHEN m.streaming THEN COALESCE((SELECT e.occurred_at FROM events e
    WHERE ` + deltas + ` ORDER BY e.stream_version DESC LIMIT 1), m.updated_at) ELSE m.updated_at END AS updated_at
FROM projection_messages m`,
	}}
}

// viewsDDL is the views as the desired-state file holds them.
func viewsDDL(dialectName string) string {
	var b strings.Builder
	for _, v := range Views(dialectName) {
		fmt.Fprintf(&b, "-- Create %q view\n%s;\n", v.Name, v.SQL)
	}
	return b.String()
}

// viewDefs returns every view of the dev database db of a dialect with its
// definition as the engine keeps it (SQLite: the statement as written;
// PostgreSQL: pg_get_viewdef's normal form).
func viewDefs(ctx context.Context, db *sql.DB, dialectName string) (map[string]string, error) {
	q := "SELECT name, sql FROM sqlite_master WHERE type = 'view'"
	if dialectName == "postgres" {
		q = "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		out[name] = def
	}
	return out, rows.Err()
}

// CheckViews reports an error when the views that the files of dir create,
// applied in order to an empty dev database, are not exactly Views: one is
// missing or extra, or its definition differs from the one the engine
// keeps for Views' statement (each is dropped and created again from
// Views, and the two definitions compared).
func CheckViews(ctx context.Context, dialectName, dir string) error {
	local, err := atlasmigrate.NewLocalDir(dir)
	if err != nil {
		return err
	}
	files, err := local.Files()
	if err != nil {
		return err
	}
	db, _, err := devDB(ctx, dialectName)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, f := range files {
		stmts, err := f.Stmts()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s does not apply: %w", f.Name(), err)
			}
		}
	}
	got, err := viewDefs(ctx, db, dialectName)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, v := range Views(dialectName) {
		known[v.Name] = true
	}
	for name := range got {
		if !known[name] {
			return fmt.Errorf("%s creates view %s, which internal/migrategen.Views does not hold", dir, name)
		}
	}
	for _, v := range Views(dialectName) {
		if _, ok := got[v.Name]; !ok {
			return fmt.Errorf("%s creates no view %s: add its CREATE VIEW (internal/migrategen.Views) to a new migration", dir, v.Name)
		}
		if _, err := db.ExecContext(ctx, "DROP VIEW "+v.Name); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, v.SQL); err != nil {
			return fmt.Errorf("view %s: %w", v.Name, err)
		}
	}
	want, err := viewDefs(ctx, db, dialectName)
	if err != nil {
		return err
	}
	for name, def := range got {
		if w := want[name]; def != w {
			return fmt.Errorf("%s creates view %s as\n%s\nbut internal/migrategen.Views says\n%s\nwrite a migration that replaces it", dir, name, def, w)
		}
	}
	return nil
}

// Hash rewrites the atlas.sum of dir from its files, after a hand edit of
// a migration that has not been applied anywhere yet.
func Hash(dir string) error {
	local, err := atlasmigrate.NewLocalDir(dir)
	if err != nil {
		return err
	}
	sum, err := local.Checksum()
	if err != nil {
		return err
	}
	return atlasmigrate.WriteSumFile(local, sum)
}

// viewless is a migration directory whose files are read without their
// view statements (see viewStatement), those of Views and of any earlier
// form of them: the Atlas Go
// library's replay diffs tables and indexes only, and its clean-up of the
// dev database cannot drop a PostgreSQL table a view depends on. Writes,
// atlas.sum and the checksum are the directory's own; CheckViews checks
// the views.
type viewless struct{ *atlasmigrate.LocalDir }

// Files returns the files of the directory without the views.
func (d viewless) Files() ([]atlasmigrate.File, error) {
	files, err := d.LocalDir.Files()
	if err != nil {
		return nil, err
	}
	out := make([]atlasmigrate.File, len(files))
	for i, f := range files {
		out[i] = atlasmigrate.NewLocalFile(f.Name(), viewStatement.ReplaceAll(f.Bytes(), nil))
	}
	return out, nil
}

// viewStatement matches a view statement of a migration file as DDL and
// a migration that changes a view write it: a comment line naming the
// view, then its CREATE VIEW or DROP VIEW statement, which holds no
// semicolon.
var viewStatement = regexp.MustCompile(`-- (Create|Drop) "[^"]+" view\n(CREATE|DROP) VIEW [^;]*;\n`)
