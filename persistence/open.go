package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/testhook"
)

// DBFileName is the database file OpenDir keeps in its directory.
const DBFileName = "peon.db"

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

	// Retention, when set, makes the store apply the policy in the
	// background (Store.Maintain): once at open, then every MaintainEvery
	// (DefaultMaintainEvery, an hour, when zero), until Close. Each run
	// logs "peon: maintenance done" with what it removed and reclaimed,
	// or "peon: maintenance failed"; a failed run is tried again at the
	// next tick. Refused with ReadOnly.
	Retention *Retention
	// MaintainEvery is how often Retention is applied; it needs Retention.
	MaintainEvery time.Duration
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
	if err := checkMaintenance(opts); err != nil {
		return nil, fmt.Errorf("open %s: %w", target.Display, err)
	}
	d := dialectOf(target)
	tel := newTelemetry(opts, d)
	mo := migrateOpts{readOnly: opts.ReadOnly, adopt: opts.Adopt, log: tel.log}
	if d.Features().Private && opts.ReadOnly {
		return nil, fmt.Errorf("open %s: %w", target.Display, &NotStoreError{})
	}
	db, err := d.Open(ctx, target.DSN, opts.ReadOnly)
	if errors.Is(err, engine.ErrAbsent) {
		return nil, fmt.Errorf("open %s: %w", target.Display, &NotStoreError{Absent: true})
	}
	mo.beforeWrite = func(ctx context.Context) error { return d.BeforeWrite(ctx, db) }
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
	tel.log.Info("peon: store opened", "dialect", d.Name(), "target", target.Display, "read_only", opts.ReadOnly)
	return s, nil
}

// Target is a parsed DSN.
type Target struct {
	Dialect string // "sqlite" or "postgres"
	DSN     string // what the driver gets: a file path, ":memory:" or a URL
	Memory  bool   // a private in-memory SQLite database
	Display string // the DSN for messages, without a password
}

// File is the path of the database file of a SQLite target; it is empty
// for a private in-memory database and for a server.
func (t Target) File() string {
	if !dialectOf(t).Features().File {
		return ""
	}
	return t.DSN
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
		return Target{Dialect: "postgres", DSN: dsn, Display: engine.Redact(dsn)}, nil
	case dsn == ":memory:" || dsn == "sqlite://:memory:" || strings.HasPrefix(dsn, "sqlite://file::memory:"):
		return Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		p, query, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite://"), "?")
		if q, _ := url.ParseQuery(query); q.Get("mode") == "memory" || p == ":memory:" {
			// Atlas's in-memory form, sqlite://NAME?mode=memory, and
			// sqlite://:memory: with a query (which it ignores).
			return Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}, nil
		}
		if p == "" {
			return Target{}, fmt.Errorf("open %q: no file path after sqlite://", dsn)
		}
		return sqlitePath(p)
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return Target{}, fmt.Errorf("open %q: unsupported scheme %q (want a SQLite path, sqlite:// or postgres://)", engine.Redact(dsn), scheme)
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
