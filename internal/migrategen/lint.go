package migrategen

import (
	"context"
	"fmt"
	"strings"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
)

// Finding is one thing Lint reports about a migration file.
type Finding struct {
	File string
	Code string // DS102 (table dropped), DS103 (column dropped), as atlas's destructive analyzer
	Text string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.File, f.Code, f.Text) }

// Lint checks a migration directory the way the Go library allows without
// the atlas CLI: atlas.sum matches, every file applies in order to an empty
// dev database, and no file drops a table or a column (destructive
// changes, atlas's DS102/DS103) unless it says `-- atlas:nolint destructive`.
func Lint(ctx context.Context, dialectName, dir string) ([]Finding, error) {
	local, err := atlasmigrate.NewLocalDir(dir)
	if err != nil {
		return nil, err
	}
	if err := atlasmigrate.Validate(local); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	db, _, err := devDB(ctx, dialectName)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var drv atlasmigrate.Driver
	if dialectName == "postgres" {
		drv, err = postgres.Open(db)
	} else {
		drv, err = sqlite.Open(db)
	}
	if err != nil {
		return nil, err
	}
	files, err := local.Files()
	if err != nil {
		return nil, err
	}
	var findings []Finding
	for _, f := range files {
		before, err := drv.InspectRealm(ctx, nil)
		if err != nil {
			return nil, err
		}
		stmts, err := f.Stmts()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(ctx, s); err != nil {
				return nil, fmt.Errorf("%s does not apply: %w\n\tin: %s", f.Name(), err, s)
			}
		}
		after, err := drv.InspectRealm(ctx, nil)
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(f.Bytes()), "atlas:nolint destructive") {
			continue
		}
		changes, err := drv.RealmDiff(before, after)
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			switch c := c.(type) {
			case *schema.DropTable:
				findings = append(findings, Finding{File: f.Name(), Code: "DS102", Text: fmt.Sprintf("dropping table %q", c.T.Name)})
			case *schema.ModifyTable:
				for _, m := range c.Changes {
					if d, ok := m.(*schema.DropColumn); ok {
						findings = append(findings, Finding{File: f.Name(), Code: "DS103", Text: fmt.Sprintf("dropping column %q of %q", d.C.Name, c.T.Name)})
					}
				}
			}
		}
	}
	return findings, nil
}
