package schemamigrate

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/internal/sqlx"
)

// ErrRefused is the sentinel that the runner's refusals wrap when
// Options.Refused is nil.
var ErrRefused = errors.New("migration refused")

// Options say how a Runner names, stores and checks what it does. The
// zero value is valid.
type Options struct {
	// Name is the directory's name in messages ("the sqlite migration
	// directory …"); empty by default.
	Name string
	// TextTime writes executed_at as text in ExecutedAtLayout, as the
	// atlas CLI does on SQLite; by default it is written as a time.
	TextTime bool
	// Refused is the sentinel that refusals wrap: a directory that does
	// not match its atlas.sum, a database that records a migration the
	// directory lacks, one that failed, one applied with other contents.
	// ErrRefused when nil.
	Refused error
	// Check, when set, judges each State the runner reads before it
	// applies a file, under the migration lock; its error stops the
	// migration, the file's transaction rolled back.
	Check func(State) error
	// Applied, when set, is called after each file's transaction
	// committed, with the file's version and description and the time
	// from its first statement to its commit.
	Applied func(version, description string, took time.Duration)
}

// Runner applies one migration directory, checked against its atlas.sum,
// to databases of one engine.
type Runner struct {
	e     Engine
	files []atlasmigrate.File
	sums  atlasmigrate.HashFile
	opts  Options
}

// New returns the runner of dir on engine e, once dir is found to match
// its atlas.sum (an error wrapping Options.Refused when it does not). Nil
// opts are the zero Options.
func New(e Engine, dir atlasmigrate.Dir, opts *Options) (*Runner, error) {
	r := &Runner{e: e}
	if opts != nil {
		r.opts = *opts
	}
	r.opts.Refused = cmp.Or(r.opts.Refused, ErrRefused)
	if err := atlasmigrate.Validate(dir); err != nil {
		return nil, fmt.Errorf("%w: the %s migration directory does not match its atlas.sum: %v", r.opts.Refused, r.opts.Name, err)
	}
	var err error
	if r.files, err = dir.Files(); err != nil {
		return nil, err
	}
	if r.sums, err = dir.Checksum(); err != nil {
		return nil, err
	}
	return r, nil
}

// Files returns the files of the directory, in order.
func (r *Runner) Files() []atlasmigrate.File { return r.files }

// State is what a read of a database's schema found: its tables and what
// its atlas_schema_revisions records of the directory's migrations.
type State struct {
	Tables  []string            // the tables and views, sorted (the engine's own excluded)
	Applied map[string]bool     // versions recorded as applied, all known to the directory
	Pending []atlasmigrate.File // files of the directory not applied, in order
	// Foreign are the recorded versions when the directory knows none of
	// them: another schema's atlas migrations. Applied and Pending are
	// then empty.
	Foreign []string
}

// Inspect reads the schema of the database q reaches and checks what it
// records against the directory, as Apply does: it changes nothing and
// takes no lock. A database written by a newer directory, a migration
// that failed half-way and one applied with other contents are refused
// (Options.Refused).
func (r *Runner) Inspect(ctx context.Context, q sqlx.Querier) (State, error) {
	st := State{Applied: map[string]bool{}}
	var err error
	if st.Tables, err = Tables(ctx, q, r.e); err != nil {
		return st, fmt.Errorf("read the schema: %w", err)
	}
	var revs []Revision
	if slices.Contains(st.Tables, RevisionsTable) {
		if revs, err = readRevisions(ctx, q, r.e); err != nil {
			return st, fmt.Errorf("migrate: %w", err)
		}
	}
	known := make(map[string]atlasmigrate.File, len(r.files))
	for _, f := range r.files {
		known[f.Version()] = f
	}
	if len(revs) > 0 && !slices.ContainsFunc(revs, func(rev Revision) bool { _, ok := known[rev.Version]; return ok }) {
		for _, rev := range revs {
			st.Foreign = append(st.Foreign, rev.Version)
		}
		return st, nil
	}
	for _, rev := range revs {
		f, ok := known[rev.Version]
		if !ok {
			return st, fmt.Errorf("%w: the database records migration %s, which this build does not have: it was written by a newer peon; upgrade peon to open it", r.opts.Refused, rev.Version)
		}
		if !rev.OK() {
			return st, fmt.Errorf("%w: migration %s failed earlier (%d of %d statements applied: %s); repair the database by hand, then delete its row from atlas_schema_revisions", r.opts.Refused, rev.Version, rev.Applied, rev.Total, rev.Error)
		}
		if want, _ := r.sums.SumByName(f.Name()); want != rev.Hash {
			return st, fmt.Errorf("%w: migration %s was applied with other contents than this build's; the database and this build disagree on its schema", r.opts.Refused, rev.Version)
		}
		st.Applied[rev.Version] = true
	}
	for _, f := range r.files {
		if !st.Applied[f.Version()] {
			st.Pending = append(st.Pending, f)
		}
	}
	return st, nil
}

// Apply applies the pending files to db, each in its own transaction
// that also records it in atlas_schema_revisions, and returns how many it
// applied. What is pending is decided inside each file's transaction,
// under the engine's migration lock, so that concurrent first opens apply
// each file once; a caller that wants opening an up-to-date database to
// wait for no lock calls Inspect first, and Apply only when files are
// pending.
func (r *Runner) Apply(ctx context.Context, db *sql.DB) (applied int, err error) {
	for {
		done, err := r.applyNext(ctx, db)
		if err != nil || done {
			return applied, err
		}
		applied++
	}
}

// applyNext applies the first pending file, in one transaction, under
// the migration lock; it reports done when there is none.
func (r *Runner) applyNext(ctx context.Context, db *sql.DB) (done bool, err error) {
	// READ COMMITTED on PostgreSQL, whatever the default isolation: the
	// revisions are read after the lock, and must see what a migration that
	// held it before committed.
	tx, err := db.BeginTx(ctx, r.e.AppendTxOptions())
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := r.e.LockMigrate(ctx, tx); err != nil {
		return false, fmt.Errorf("migrate: lock: %w", err)
	}
	st, err := r.Inspect(ctx, tx)
	if err != nil {
		return false, err
	}
	if r.opts.Check != nil {
		if err := r.opts.Check(st); err != nil {
			return false, err
		}
	}
	if len(st.Pending) == 0 {
		return true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, r.e.RevisionTable()); err != nil {
		return false, fmt.Errorf("migrate: create atlas_schema_revisions: %w", err)
	}
	f := st.Pending[0]
	stmts, err := f.Stmts()
	if err != nil {
		return false, fmt.Errorf("migrate: parse %s: %w", f.Name(), err)
	}
	start := time.Now()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("migrate: %s: %w\n\tin: %s", f.Name(), err, stmt)
		}
	}
	hash, err := r.sums.SumByName(f.Name())
	if err != nil {
		return false, fmt.Errorf("migrate: %s: %w", f.Name(), err)
	}
	if err := writeRevision(ctx, tx, r.e, r.opts.TextTime, f, hash, len(stmts), start); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate: commit %s: %w", f.Name(), err)
	}
	if r.opts.Applied != nil {
		r.opts.Applied(f.Version(), f.Desc(), time.Since(start))
	}
	return false, nil
}
