package persistence

import (
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/dbtest"
	"github.com/peonhq/peon/internal/engine/sqlite"
	"github.com/peonhq/peon/internal/schemamigrate"
)

// TestRevisionsAreRecordedAsTheAtlasCLIDoes reads atlas_schema_revisions
// after an open, column by column, against what the CLI writes.
func TestRevisionsAreRecordedAsTheAtlasCLIDoes(t *testing.T) {
	t.Parallel()
	path := dbtest.SQLiteFile(t)
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	dir, err := schemamigrate.EmbeddedDir("sqlite")
	require.NoError(t, err)
	files, err := dir.Files()
	require.NoError(t, err)
	sums, err := dir.Checksum()
	require.NoError(t, err)

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var cols []string
	rows, err := db.QueryContext(t.Context(), "SELECT name || ' ' || lower(type) || ' ' || \"notnull\" FROM pragma_table_info('atlas_schema_revisions') ORDER BY cid")
	require.NoError(t, err)
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Close())
	require.Equal(t, []string{"version text 1", "description text 1", "type integer 1", "applied integer 1", "total integer 1",
		"executed_at datetime 1", "execution_time integer 1", "error text 0", "error_stmt text 0", "hash text 1",
		"partial_hashes json 0", "operator_version text 1"}, cols)

	rows, err = db.QueryContext(t.Context(), "SELECT version, description, type, applied, total, CAST(executed_at AS TEXT), execution_time, error, error_stmt, hash, partial_hashes IS NULL, operator_version FROM atlas_schema_revisions ORDER BY version")
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			version, desc, executedAt, errText, errStmt, hash, operator string
			typ, applied, total, execTime                               int64
			noPartial                                                   bool
		)
		require.NoError(t, rows.Scan(&version, &desc, &typ, &applied, &total, &executedAt, &execTime, &errText, &errStmt, &hash, &noPartial, &operator))
		f := files[n]
		stmts, err := f.Stmts()
		require.NoError(t, err)
		want, err := sums.SumByName(f.Name())
		require.NoError(t, err)
		require.Equal(t, f.Version(), version)
		require.Equal(t, f.Desc(), desc)
		require.Equal(t, int64(atlasmigrate.RevisionTypeExecute), typ)
		require.Equal(t, int64(len(stmts)), applied)
		require.Equal(t, applied, total)
		at, err := time.Parse(schemamigrate.ExecutedAtLayout, executedAt)
		require.NoError(t, err, "executed_at %q must be in the CLI's layout", executedAt)
		require.WithinDuration(t, time.Now(), at, time.Minute)
		require.Positive(t, execTime)
		require.Empty(t, errText)
		require.Empty(t, errStmt)
		require.Equal(t, want, hash)
		require.False(t, strings.HasPrefix(hash, "h1:"))
		require.True(t, noPartial)
		require.Equal(t, schemamigrate.OperatorVersion, operator)
		n++
	}
	require.Equal(t, len(files), n)
}

// TestOpenSeesCLIMigratedDatabaseAsUpToDate migrates a database the way the
// atlas CLI does (statements, then its revision rows) and opens it: nothing
// may be applied twice.
func TestOpenSeesCLIMigratedDatabaseAsUpToDate(t *testing.T) {
	t.Parallel()
	path := dbtest.SQLiteFile(t)
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	require.NoError(t, err)
	dir, err := schemamigrate.EmbeddedDir("sqlite")
	require.NoError(t, err)
	files, err := dir.Files()
	require.NoError(t, err)
	sums, err := dir.Checksum()
	require.NoError(t, err)
	_, err = db.Exec(sqlite.Engine{}.RevisionTable())
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version) VALUES ('.atlas_cloud_identifier', 'x', 0, 0, 0, '2026-11-28 09:00:00+00:00', 0, '', '', '', NULL, 'Atlas CLI')")
	require.NoError(t, err)
	for _, f := range files {
		stmts, err := f.Stmts()
		require.NoError(t, err)
		for _, st := range stmts {
			_, err := db.Exec(st)
			require.NoError(t, err)
		}
		hash, err := sums.SumByName(f.Name())
		require.NoError(t, err)
		_, err = db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version) VALUES (?, ?, 2, ?, ?, '2026-11-28 09:00:00.123456789+00:00', 1500000, '', '', ?, NULL, 'Atlas CLI v0.32.1')",
			f.Version(), f.Desc(), len(stmts), len(stmts), hash)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s, err := Open(t.Context(), path)
	require.NoError(t, err, "a database the CLI migrated opens without re-applying anything")
	_, err = s.Append(t.Context(), nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestMigrationRefusals: a tampered directory and a newer database are
// refused with ErrMigration and nothing changes.
func TestMigrationRefusals(t *testing.T) {
	t.Parallel()
	embedded, err := schemamigrate.EmbeddedDir("sqlite")
	require.NoError(t, err)
	files, err := embedded.Files()
	require.NoError(t, err)

	t.Run("TamperedSum", func(t *testing.T) {
		t.Parallel()
		tampered := &atlasmigrate.MemDir{}
		for _, f := range files {
			require.NoError(t, tampered.WriteFile(f.Name(), append(f.Bytes(), []byte("\n-- edited by hand\n")...)))
		}
		sum, err := fsRead(embedded, atlasmigrate.HashFileName)
		require.NoError(t, err)
		require.NoError(t, tampered.WriteFile(atlasmigrate.HashFileName, sum))
		path := dbtest.SQLiteFile(t)
		_, err = OpenWithMigrationDir(t.Context(), path, nil, tampered)
		require.ErrorIs(t, err, ErrMigration)
		require.Contains(t, err.Error(), "atlas.sum")
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		var n int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM sqlite_master").Scan(&n))
		require.Zero(t, n, "nothing was created")
	})

	t.Run("NewerDatabase", func(t *testing.T) {
		t.Parallel()
		path := dbtest.SQLiteFile(t)
		s, err := Open(t.Context(), path)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, hash, operator_version) VALUES ('29991231000000', 'future', 2, 1, 1, '2999-12-31 00:00:00+00:00', 1, 'x', 'peon 9')")
		require.NoError(t, err)
		_, err = Open(t.Context(), path)
		require.ErrorIs(t, err, ErrMigration)
		require.Contains(t, err.Error(), "newer peon")
		require.Contains(t, err.Error(), "29991231000000")
	})
}

func fsRead(d atlasmigrate.Dir, name string) ([]byte, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	_, err = f.Read(b)
	return b, err
}

// TestConcurrentFirstOpens opens one new file from many stores at once.
func TestConcurrentFirstOpens(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Go(func() {
			s, err := OpenDir(t.Context(), dir)
			if err == nil {
				_, err = s.Append(t.Context(), nil)
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}
