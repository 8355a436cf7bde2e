package schemamigrate_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/peonhq/peon/internal/schemamigrate"
	"github.com/peonhq/peon/internal/sqlx"
)

// sqliteEngine is the least a SQLite engine gives the runner: ?
// placeholders, no lock (a SQLite write transaction is the lock), and the
// revision table as the atlas CLI creates it.
type sqliteEngine struct{}

func (sqliteEngine) Bind(query string) string                        { return query }
func (sqliteEngine) AppendTxOptions() *sql.TxOptions                 { return nil }
func (sqliteEngine) LockMigrate(context.Context, sqlx.Querier) error { return nil }
func (sqliteEngine) TablesQuery() string {
	return `SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`
}
func (sqliteEngine) RevisionTable() string {
	return "CREATE TABLE IF NOT EXISTS `atlas_schema_revisions` (`version` text NOT NULL, `description` text NOT NULL, " +
		"`type` integer NOT NULL DEFAULT 2, `applied` integer NOT NULL DEFAULT 0, `total` integer NOT NULL DEFAULT 0, " +
		"`executed_at` datetime NOT NULL, `execution_time` integer NOT NULL, `error` text NULL, `error_stmt` text NULL, " +
		"`hash` text NOT NULL, `partial_hashes` json NULL, `operator_version` text NOT NULL, PRIMARY KEY (`version`))"
}

// errTest is the sentinel the runners of these tests wrap.
var errTest = errors.New("test refusal")

type bundle struct {
	db    *sql.DB
	dir   atlasmigrate.Dir
	files []atlasmigrate.File
	sums  atlasmigrate.HashFile
}

// setup opens a fresh SQLite file and the embedded sqlite directory.
func setup(t *testing.T) bundle {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "peon.db")+"?_pragma=foreign_keys(1)&_txlock=immediate")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	dir, err := schemamigrate.EmbeddedDir("sqlite")
	require.NoError(t, err)
	files, err := dir.Files()
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sums, err := dir.Checksum()
	require.NoError(t, err)
	return bundle{db: db, dir: dir, files: files, sums: sums}
}

func newRunner(t *testing.T, dir atlasmigrate.Dir, opts *schemamigrate.Options) *schemamigrate.Runner {
	t.Helper()
	r, err := schemamigrate.New(sqliteEngine{}, dir, opts)
	require.NoError(t, err)
	return r
}

// TestApply applies every file once, reports each through Applied, and
// records each as the atlas CLI does.
func TestApply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var versions []string
	r := newRunner(t, b.dir, &schemamigrate.Options{Name: "sqlite", TextTime: true, Applied: func(version, desc string, took time.Duration) {
		require.Positive(t, took)
		versions = append(versions, version)
	}})
	n, err := r.Apply(t.Context(), b.db)
	require.NoError(t, err)
	require.Equal(t, len(b.files), n)
	require.Len(t, versions, n)

	revs, err := schemamigrate.ReadRevisions(t.Context(), b.db, sqliteEngine{})
	require.NoError(t, err)
	require.Len(t, revs, len(b.files))
	for i, f := range b.files {
		stmts, err := f.Stmts()
		require.NoError(t, err)
		want, err := b.sums.SumByName(f.Name())
		require.NoError(t, err)
		require.Equal(t, f.Version(), versions[i])
		require.Equal(t, schemamigrate.Revision{Version: f.Version(), Description: f.Desc(), Hash: want,
			Applied: len(stmts), Total: len(stmts), ExecutedAt: revs[i].ExecutedAt}, revs[i])
		require.True(t, revs[i].OK())
		require.WithinDuration(t, time.Now(), revs[i].ExecutedAt, time.Minute)
	}
	var executedAt, operator string
	var typ int
	require.NoError(t, b.db.QueryRow("SELECT CAST(executed_at AS TEXT), operator_version, type FROM atlas_schema_revisions LIMIT 1").Scan(&executedAt, &operator, &typ))
	_, err = time.Parse(schemamigrate.ExecutedAtLayout, executedAt)
	require.NoError(t, err, "executed_at %q must be in the CLI's layout", executedAt)
	require.Equal(t, schemamigrate.OperatorVersion, operator)
	require.Equal(t, int(atlasmigrate.RevisionTypeExecute), typ)

	n, err = r.Apply(t.Context(), b.db)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is applied twice")
	st, err := r.Inspect(t.Context(), b.db)
	require.NoError(t, err)
	require.Empty(t, st.Pending)
	require.Len(t, st.Applied, len(b.files))
}

// TestCheck: the check runs under the lock, and its error stops the
// migration with nothing applied.
func TestCheck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stop := errors.New("stop")
	var seen []schemamigrate.State
	r := newRunner(t, b.dir, &schemamigrate.Options{Check: func(st schemamigrate.State) error {
		seen = append(seen, st)
		return stop
	}})
	n, err := r.Apply(t.Context(), b.db)
	require.ErrorIs(t, err, stop)
	require.Zero(t, n)
	require.Len(t, seen, 1)
	require.Len(t, seen[0].Pending, len(b.files))
	tables, err := schemamigrate.Tables(t.Context(), b.db, sqliteEngine{})
	require.NoError(t, err)
	require.Empty(t, tables, "the file's transaction rolled back")
}

// TestRefusals: what the runner refuses wraps Options.Refused, or
// ErrRefused without it.
func TestRefusals(t *testing.T) {
	t.Parallel()

	t.Run("TamperedDir", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tampered := &atlasmigrate.MemDir{}
		for _, f := range b.files {
			require.NoError(t, tampered.WriteFile(f.Name(), append(f.Bytes(), []byte("\n-- edited by hand\n")...)))
		}
		sum, err := b.sums.MarshalText()
		require.NoError(t, err)
		require.NoError(t, tampered.WriteFile(atlasmigrate.HashFileName, sum))
		_, err = schemamigrate.New(sqliteEngine{}, tampered, &schemamigrate.Options{Name: "sqlite", Refused: errTest})
		require.ErrorIs(t, err, errTest)
		require.ErrorContains(t, err, "the sqlite migration directory does not match its atlas.sum")
		_, err = schemamigrate.New(sqliteEngine{}, tampered, nil)
		require.ErrorIs(t, err, schemamigrate.ErrRefused)
	})

	for _, tc := range []struct {
		name, row, want string
		applyFirst      bool // apply the directory before the row is written
	}{
		{"Newer", "('29991231000000', 'future', 2, 1, 1, '2999-12-31 00:00:00+00:00', 1, NULL, 'x', 'peon 9')", "newer peon", true},
		{"Failed", "(?, 'init', 2, 1, 3, '2026-11-28 09:00:00+00:00', 1, 'boom', ?, 'peon')", "failed earlier (1 of 3 statements applied: boom)", false},
		{"OtherContents", "(?, 'init', 2, 3, 3, '2026-11-28 09:00:00+00:00', 1, NULL, 'not-the-sum', 'peon')", "applied with other contents", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			r := newRunner(t, b.dir, &schemamigrate.Options{Refused: errTest})
			if tc.applyFirst {
				_, err := r.Apply(t.Context(), b.db)
				require.NoError(t, err)
			}
			_, err := b.db.Exec(sqliteEngine{}.RevisionTable())
			require.NoError(t, err)
			args := []any{}
			if strings.Contains(tc.row, "?") {
				args = append(args, b.files[0].Version())
				if strings.Count(tc.row, "?") == 2 {
					sum, err := b.sums.SumByName(b.files[0].Name())
					require.NoError(t, err)
					args = append(args, sum)
				}
			}
			_, err = b.db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, hash, operator_version) VALUES "+tc.row, args...)
			require.NoError(t, err)
			_, err = r.Inspect(t.Context(), b.db)
			require.ErrorIs(t, err, errTest)
			require.ErrorContains(t, err, tc.want)
			_, err = r.Apply(t.Context(), b.db)
			require.ErrorIs(t, err, errTest, "refused under the lock too")
		})
	}

	t.Run("Foreign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.db.Exec(sqliteEngine{}.RevisionTable())
		require.NoError(t, err)
		_, err = b.db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, hash, operator_version) VALUES ('1', 'theirs', 2, 1, 1, '2020-01-01 00:00:00+00:00', 1, 'x', 'Atlas CLI')")
		require.NoError(t, err)
		st, err := newRunner(t, b.dir, nil).Inspect(t.Context(), b.db)
		require.NoError(t, err, "another schema's history is the caller's to judge")
		require.Equal(t, []string{"1"}, st.Foreign)
		require.Empty(t, st.Applied)
		require.Empty(t, st.Pending)
	})
}

// TestReadRevisions: no table reads as no revisions, and the atlas CLI's
// cloud identifier row is not a migration.
func TestReadRevisions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	revs, err := schemamigrate.ReadRevisions(t.Context(), b.db, sqliteEngine{})
	require.NoError(t, err)
	require.Empty(t, revs)
	_, err = b.db.Exec(sqliteEngine{}.RevisionTable())
	require.NoError(t, err)
	_, err = b.db.Exec("INSERT INTO atlas_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version) VALUES " +
		"('.atlas_cloud_identifier', 'x', 0, 0, 0, '2026-11-28 09:00:00+00:00', 0, '', '', '', NULL, 'Atlas CLI'), " +
		"('20261128130707', 'init', 2, 2, 3, '2026-11-28 09:00:00.123456789+00:00', 1500000, 'boom', 'CREATE x', 'abc', NULL, 'Atlas CLI v0.32.1')")
	require.NoError(t, err)
	revs, err = schemamigrate.ReadRevisions(t.Context(), b.db, sqliteEngine{})
	require.NoError(t, err)
	require.Equal(t, []schemamigrate.Revision{{Version: "20261128130707", Description: "init", Hash: "abc", Applied: 2, Total: 3, Error: "boom",
		ExecutedAt: time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)}}, revs)
	require.False(t, revs[0].OK())
}
