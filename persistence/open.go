package persistence

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/peonhq/peon/internal/testhook"
)

// DBFileName is the database file OpenDir keeps in its directory.
const DBFileName = "peon.db"

// busyTimeout is how long a SQLite connection waits for another process's
// write lock before it gives up.
const busyTimeout = 30 * time.Second

// Options are the optional inputs of OpenWith. A nil *Options is the same
// as the zero value.
type Options struct {
	// NoProjections opens a bare log: appends do not maintain the
	// projection tables and opening does not catch them up. For tools and
	// benchmarks that need only the log; the tables fall behind.
	NoProjections bool
	// ReadOnly opens a store without changing its database in any way:
	// no file is created, no migration applied, no journal mode switched
	// and the projections are not caught up; every connection refuses to
	// write (SQLite: the query_only pragma; PostgreSQL:
	// default_transaction_read_only). It refuses, with ErrNotStore, a
	// database that is empty, absent or not a peon store, and, with
	// ErrMigrationPending, a store that lacks migrations of this build.
	// Appends, imports, Rebuild and CatchUp return ErrReadOnly; reads,
	// Subscribe, Export and Verify work. peon-store's read-only commands
	// open stores this way.
	ReadOnly bool
	// Adopt lets Open add peon's tables to a database that already holds
	// other tables and no peon migrations. Without it such a database is
	// refused with a *NotStoreError naming its tables, and left as it was.
	// A database with a table of the name of one of peon's is refused
	// either way.
	Adopt bool

	// Logger receives the store's operational events: each migration
	// applied (version, duration), the store opened, projection catch-up
	// and rebuild progress (started, every 5 s, done with counts and
	// duration), Verify, Import and Export done, and failures of the
	// background work that watches for other processes' appends (the
	// PostgreSQL listener's reconnects, SQLite's data_version watcher)
	// and of reads that a resuming subscription retries. Append never
	// logs. Nil discards everything. docs/OBSERVABILITY.md lists the
	// messages.
	Logger *slog.Logger
	// TracerProvider, when set, gets spans of appends, replay pages,
	// subscription catch-ups, migrations, catch-ups, rebuilds, verifies,
	// imports and exports, named peon.*; nil means no spans.
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, gets the store's metrics: events appended
	// and append latency by outcome, and the lag of live subscriptions
	// (see docs/OBSERVABILITY.md); nil means none. Without a
	// TracerProvider and a MeterProvider, Append does no telemetry work.
	MeterProvider metric.MeterProvider
}

// OpenMemory opens a private, migrated in-memory SQLite store; it is gone
// when the store is closed. Tests use it.
func OpenMemory(ctx context.Context) (*Store, error) {
	return OpenWith(ctx, ":memory:", nil)
}

// OpenDir opens (creating it if absent) the store in dataDir/peon.db. A
// missing dataDir is created with mode 0700, the database file with 0600.
func OpenDir(ctx context.Context, dataDir string) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("open: empty data directory")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open: create data directory: %w", err)
	}
	return OpenWith(ctx, filepath.Join(dataDir, DBFileName), nil)
}

// Open opens the store at dsn, creating and migrating it as needed: a
// SQLite file path, "sqlite://<path>", ":memory:", or a PostgreSQL URL
// "postgres://…" / "postgresql://…".
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, nil)
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	target, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	d := dialectOf(target)
	tel := newTelemetry(opts, d)
	mo := migrateOpts{readOnly: opts.ReadOnly, adopt: opts.Adopt, log: tel.log}
	var db *sql.DB
	switch {
	case target.Dialect == "postgres":
		db, err = openPostgres(ctx, target.DSN, opts.ReadOnly)
	case target.Memory && opts.ReadOnly:
		return nil, fmt.Errorf("open %s: %w", target.Display, &NotStoreError{})
	default:
		db, err = openSQLite(ctx, target, opts.ReadOnly)
		if !target.Memory {
			mo.beforeWrite = func(ctx context.Context) error {
				if err := enableWAL(ctx, db); err != nil {
					return fmt.Errorf("enable WAL: %w", err)
				}
				return nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	dir := testhook.MigrationDir(ctx) // nil but in this module's tests
	if dir == nil {
		if dir, err = embeddedDir(d); err != nil {
			db.Close()
			return nil, err
		}
	}
	mctx, endMigrate := tel.start(ctx, "peon.migrate")
	applied, err := migrate(mctx, db, d, dir, mo)
	endMigrate(err, attribute.Int("peon.migrate.applied", applied))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", target.Display, err)
	}
	s := newStore(db, d, target, opts, tel)
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", target.Display, err)
	}
	tel.log.Info("peon: store opened", "dialect", d.name(), "target", target.Display, "read_only", opts.ReadOnly)
	return s, nil
}

// Target is a parsed DSN.
type Target struct {
	Dialect string // "sqlite" or "postgres"
	DSN     string // what the driver gets: a file path, ":memory:" or a URL
	Memory  bool   // a private in-memory SQLite database
	Display string // the DSN for messages, without a password
}

// ParseDSN tells which engine a DSN names and what its driver gets. It
// accepts a SQLite file path, "sqlite://<path>" (Atlas's form; query
// parameters are ignored, the store sets its own pragmas), ":memory:",
// and "postgres://" or "postgresql://" URLs.
func ParseDSN(dsn string) (Target, error) {
	switch {
	case strings.TrimSpace(dsn) == "":
		return Target{}, errors.New("open: empty database path or URL")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Target{Dialect: "postgres", DSN: dsn, Display: redact(dsn)}, nil
	case dsn == ":memory:" || dsn == "sqlite://:memory:" || strings.HasPrefix(dsn, "sqlite://file::memory:"):
		return Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		p, query, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite://"), "?")
		if q, _ := url.ParseQuery(query); q.Get("mode") == "memory" {
			// Atlas's in-memory form, sqlite://NAME?mode=memory.
			return Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}, nil
		}
		if p == "" {
			return Target{}, fmt.Errorf("open %q: no file path after sqlite://", dsn)
		}
		return sqlitePath(p)
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return Target{}, fmt.Errorf("open %q: unsupported scheme %q (want a SQLite path, sqlite:// or postgres://)", redact(dsn), scheme)
	}
	return sqlitePath(dsn)
}

// sqlitePath checks a SQLite file path: the store appends its own query
// to it, and SQLite would read a "file:" path as a URI naming another file.
func sqlitePath(p string) (Target, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return Target{}, fmt.Errorf("open %q: empty database path", p)
	case strings.ContainsAny(p, "?#\x00"):
		return Target{}, fmt.Errorf("open %q: a SQLite path may not contain '?', '#' or NUL", p)
	case strings.HasPrefix(p, "file:"):
		return Target{}, fmt.Errorf("open %q: SQLite URIs (file:…) are not supported; give a plain path, sqlite://<path> or :memory:", p)
	}
	return Target{Dialect: "sqlite", DSN: p, Display: p}, nil
}

// redact hides a URL's password, in its user info or a password= (or
// sslpassword=) parameter. The user info ends at the last '@' before the
// path, as net/url and pgx read it.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(auth, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(auth[:at], ":"); hasPass {
			auth = user + ":xxxxx" + auth[at:]
		}
	}
	if path, query, ok := strings.Cut(tail, "?"); ok {
		query, frag, hasFrag := strings.Cut(query, "#")
		params := strings.Split(query, "&")
		for i, kv := range params {
			k, _, _ := strings.Cut(kv, "=")
			if name, err := url.QueryUnescape(k); err != nil || strings.EqualFold(name, "password") || strings.EqualFold(name, "sslpassword") {
				params[i] = k + "=xxxxx"
			}
		}
		tail = path + "?" + strings.Join(params, "&")
		if hasFrag {
			tail += "#" + frag
		}
	}
	return scheme + "://" + auth + tail
}

// sqlitePragmas are set on every connection: foreign keys (ent needs
// them), waiting for other writers instead of failing, NORMAL sync (safe
// in WAL mode), UTC timestamps in SQLite's text layout that compare
// correctly in SQL, and IMMEDIATE write transactions.
var sqlitePragmas = "_pragma=foreign_keys(1)" +
	"&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
	"&_pragma=synchronous(NORMAL)" +
	"&_time_format=sqlite&_timezone=UTC&_txlock=immediate"

// sqliteReadOnly is added to the pragmas of a read-only store's
// connections. query_only rather than SQLite's mode=ro: a mode=ro
// connection leaves the -wal and -shm files it created behind, while the
// last read-write connection to close removes them.
const sqliteReadOnly = "&_pragma=query_only(1)"

func openSQLite(ctx context.Context, t Target, readOnly bool) (*sql.DB, error) {
	if t.Memory {
		// A private in-memory database lives as long as its one connection.
		db, err := sql.Open("sqlite", "file:peon-"+randomName()+"?mode=memory&"+sqlitePragmas)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		return db, nil
	}
	pragmas := sqlitePragmas
	if readOnly {
		if err := checkSQLiteFile(t.DSN, true); err != nil {
			return nil, err
		}
		pragmas += sqliteReadOnly
	} else if err := prepareSQLiteFile(t.DSN); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", t.DSN+"?"+pragmas)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := checkSQLite(ctx, db, t.DSN); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkSQLiteFile refuses, before SQLite opens it, a path that is not a
// regular file: SQLite would fail on a directory, a named pipe, a device
// or a socket with a bare "disk I/O error" or "unable to open", or block
// on a FIFO. A missing file is refused when mustExist, and otherwise left
// to the caller.
func checkSQLiteFile(path string, mustExist bool) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mustExist:
		return fmt.Errorf("open %s: %w", path, &NotStoreError{Absent: true})
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	case info.IsDir():
		return fmt.Errorf("open %s: is a directory, not a database file (use OpenDir or %s)", path, filepath.Join(path, DBFileName))
	case !info.Mode().IsRegular():
		return fmt.Errorf("open %s: is %s, not a database file; give the path of a SQLite file", path, fileKind(info.Mode()))
	}
	return nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeIrregular != 0:
		return "a file of unknown type"
	}
	return "not a regular file"
}

// prepareSQLiteFile creates the database file with mode 0600 (SQLite gives
// its -wal and -shm files the same mode), and turns the usual mistakes into
// clear errors.
func prepareSQLiteFile(path string) error {
	if err := checkSQLiteFile(path, false); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return checkWritable(path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process created it first
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open %s: the directory %s does not exist", path, filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("open %s: create database file: %w", path, err)
	}
	return f.Close()
}

// checkWritable refuses a database file this process may not write, and
// one in a directory it may not write while SQLite would have to create
// the -wal or -shm file there: SQLite itself would open the file read-only
// without a word and fail at the first write.
func checkWritable(path string) error {
	if err := writable(path); err != nil {
		return fmt.Errorf("open %s: the database file is not writable (%v); peon needs to write to it", path, err)
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(side); errors.Is(err, fs.ErrNotExist) {
			if err := writable(filepath.Dir(path)); err != nil {
				return fmt.Errorf("open %s: the directory %s is not writable (%v); SQLite needs to create the database's -wal and -shm files there", path, filepath.Dir(path), err)
			}
			break
		}
	}
	return nil
}

// checkSQLite makes sure the file is a SQLite database we can read.
func checkSQLite(ctx context.Context, db *sql.DB, path string) error {
	if _, err := queryInt64(ctx, db, "PRAGMA schema_version"); err != nil {
		if strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "malformed") {
			return fmt.Errorf("open %s: the file is not a SQLite database (or is corrupt): %w", path, err)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	return nil
}

// enableWAL switches the file to write-ahead logging once; the mode
// persists in the file. Concurrent first opens may find the file busy while
// another switches it, so it retries.
func enableWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			err = db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
			if err == nil && strings.EqualFold(mode, "wal") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("journal mode is %q", mode)
			}
		}
		if time.Now().After(deadline) || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked" or "busy".
func isBusy(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") || strings.Contains(msg, "(5)") || strings.Contains(msg, "(517)")
}

// openPostgres opens a pool on url; with readOnly, every session starts
// with default_transaction_read_only, so that no transaction writes.
func openPostgres(ctx context.Context, url string, readOnly bool) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(url), err)
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", redact(url), err)
	}
	return db, nil
}

func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
