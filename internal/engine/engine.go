// Package engine is the seam between the store and the database engines:
// small interfaces, one per concern, that package sqlite and package
// postgres implement, the types they share, and the Features that say
// what an engine legitimately does differently. Nothing above it compares
// an engine's name.
//
// Statements above the seam are written with ? placeholders and passed
// through Binder.Bind.
package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"time"

	"github.com/peonhq/peon/internal/sqlx"
)

// Querier runs raw statements; see sqlx.Querier.
type Querier = sqlx.Querier

// Engine is everything the store does differently on one engine.
type Engine interface {
	// Name is "sqlite" or "postgres", also the name of the engine's
	// migration directory.
	Name() string
	// EntDialect is ent's name for the engine.
	EntDialect() string
	// SystemName is OpenTelemetry's db.system.name of the engine.
	SystemName() string
	// Features says what the engine does differently.
	Features() Features
	Opener
	Binder
	Appender
	Migrator
	Builder
	Checker
	Watcher
	// DiskFull reports whether err is the engine's own word that the
	// disk, or the database's size limit, is full.
	DiskFull(err error) bool
}

// Features are what an engine legitimately does differently, for the
// store to branch on instead of its name.
type Features struct {
	// SerialWrites: the engine has one writer at a time (SQLite's file
	// lock), so the store queues its own write transactions in Go
	// instead of letting them spin in the engine's busy handler.
	SerialWrites bool
	// Private: the database lives in this process only (a private
	// in-memory SQLite) on one connection; no other process can reach
	// it, nothing can open it read-only, and a connection of its own
	// beside the store's is not to be had.
	Private bool
	// File: the DSN is the path of the database's file.
	File bool
	// PreparesProjections: the store prepares the projectors' statements
	// once at open, because an append's projection writes run them
	// through its statement cache on this engine. On PostgreSQL appends
	// are pipelined through pgx, which prepares on each connection what
	// it runs, and nothing would use them.
	PreparesProjections bool
	// RevisionTimesAsText: the atlas CLI keeps atlas_schema_revisions'
	// executed_at as text on this engine (SQLite), in
	// schemamigrate.ExecutedAtLayout; a time in another form reads back
	// in the CLI as year 1.
	RevisionTimesAsText bool
	// ArrayParameters: a Go slice is a parameter of an array type
	// (PostgreSQL through pgx), so an append writes its events as one
	// INSERT … SELECT FROM unnest of twelve arrays (one statement
	// whatever their number, which the server plans in a fraction of the
	// time a multi-row statement of as many parameters takes), and the
	// projector looks turns up by one array.
	ArrayParameters bool
	// JSONPayloads: the payload column of events holds only JSON
	// (PostgreSQL's json type checks it on the way in). On SQLite it is
	// text, which a damaged row may hold anything in, so SQL that reads
	// into payloads checks json_valid first.
	JSONPayloads bool
}

// Opener opens the engine's databases: its driver, its connection
// settings, its pool.
type Opener interface {
	// Open opens a pool on dsn, creating the database where the engine
	// does (a SQLite file). With readOnly every connection refuses to
	// write and nothing is created: a database that does not exist is
	// refused with ErrAbsent.
	Open(ctx context.Context, dsn string, readOnly bool) (*sql.DB, error)
	// OpenExisting opens the database at dsn read-only, as Open with
	// readOnly does, and returns a nil *sql.DB when there is nothing to
	// read (no such file, a fresh in-memory database).
	OpenExisting(ctx context.Context, dsn string) (*sql.DB, error)
	// BeforeWrite prepares a database for the store's first write to it
	// (SQLite: write-ahead logging, which persists in the file).
	BeforeWrite(ctx context.Context, db *sql.DB) error
}

// ErrAbsent is Open's refusal, with readOnly, of a database that does
// not exist.
var ErrAbsent = errors.New("no database")

// Binder adapts statements written with ? placeholders.
type Binder interface {
	// Bind rewrites ? placeholders into the engine's own.
	Bind(query string) string
	// MaxArgs is the most bind arguments one statement may carry.
	MaxArgs() int
}

// Appender is what appending needs of an engine.
type Appender interface {
	// AppendTxOptions are the options of the store's own transactions
	// that take the append lock or the migration lock (nil for the
	// driver's default).
	AppendTxOptions() *sql.TxOptions
	// LockAppend serializes appenders for the rest of tx, so that
	// sequences are taken in commit order. It refuses, with an
	// *IsolationError, a transaction whose reads after the lock could be
	// stale.
	LockAppend(ctx context.Context, tx Querier) error
	// LastSequence returns the highest sequence ever taken, inside the
	// append lock.
	LastSequence(ctx context.Context, tx Querier) (int64, error)
	// LastSequenceSQL is LastSequence as a scalar expression, which the
	// store folds into its head reads.
	LastSequenceSQL() string
	// Notify tells other processes, at commit of tx, that the log grew.
	Notify(ctx context.Context, tx Querier, head int64) error
	// NotifyingInsert is what turns an INSERT, written with ?
	// placeholders, into a statement that also does what Notify does:
	// prefix + INSERT + suffix, with the head as one more argument after
	// the INSERT's. Both are empty when Notify does nothing on this
	// engine.
	NotifyingInsert() (prefix, suffix string)
}

// IsolationError is LockAppend's refusal of a transaction whose
// isolation could make its reads after the lock stale.
type IsolationError struct {
	Detail string // what the transaction is and what it needs
}

// Error returns the detail.
func (e *IsolationError) Error() string { return e.Detail }

// Migrator is what the migration runner needs of an engine.
type Migrator interface {
	// RevisionTable creates atlas_schema_revisions as the atlas CLI does.
	RevisionTable() string
	// LockMigrate serializes migrating processes for the rest of tx.
	LockMigrate(ctx context.Context, tx Querier) error
	// TablesQuery selects the names of the database's tables and views
	// (on PostgreSQL, of the first schema of the search_path), sorted,
	// the engine's own excluded.
	TablesQuery() string
}

// Builder is what building tables aside needs of an engine: Rebuild,
// Verify and Import.
type Builder interface {
	// AllowTempWrites lifts, on one connection of a read-only store, the
	// engine's refusal to write, for the temporary tables Verify builds;
	// the connection must never go back to the pool.
	AllowTempWrites(ctx context.Context, conn *sql.Conn) error
	// CreateShadow creates shadow, an empty temporary table with the
	// columns and column types of table, that the end of tx drops.
	CreateShadow(ctx context.Context, tx Querier, table, shadow string) error
	// CreateStaging creates on conn the temporary table name with the
	// columns and column types of events, sequence as its primary key and
	// event_id and (stream_id, stream_version) unique (the index a
	// message's completion reads its deltas by), for Import to stage its
	// events in. It lives as
	// long as the connection.
	CreateStaging(ctx context.Context, conn *sql.Conn, name string) error
	// ShadowTables creates on conn, for each of tables, a temporary table
	// of the same name, columns, keys and indexes, which the statements
	// on conn that name the table unqualified reach from then on instead
	// of it, and returns the qualified name of each table itself. conn
	// must never go back to the pool afterwards.
	ShadowTables(ctx context.Context, conn *sql.Conn, tables []string) (map[string]string, error)
	// SnapshotBegin starts, on a connection, a transaction that reads one
	// snapshot throughout and takes no write lock while it writes
	// temporary tables only.
	SnapshotBegin() string
	// Distinct is a condition that holds when the values of a and b
	// differ, NULL counting as a value; values that it finds the same
	// render as the same text.
	Distinct(a, b string) string
	// ByteOrder is the COLLATE clause that orders text by its bytes, as
	// Go compares strings.
	ByteOrder() string
}

// Checker runs the engine's own check of a database.
type Checker interface {
	// IntegrityCheck runs, through q, the engine's own check of the
	// database's pages and indexes (on PostgreSQL, of tables), at most
	// max findings, and returns its name and each damage it found. When
	// the engine offers no such check here, name is empty and note says
	// why and what to do.
	IntegrityCheck(ctx context.Context, q Querier, tables []string, max int) (name, note string, found []Problem, err error)
}

// Problem is one damage an integrity check found.
type Problem struct {
	Table  string // the table, when the check names one
	Key    string // the index, page or tuple
	Detail string // the engine's message
}

// Watcher notices the appends of other processes.
type Watcher interface {
	// Watch runs until ctx ends, calling w.Grew whenever another process
	// may have appended. It returns at once when the engine needs no
	// watch (a private database).
	Watch(ctx context.Context, w Watch)
}

// Watch is what a Watcher watches with.
type Watch struct {
	DB  *sql.DB // the store's pool
	DSN string  // what the store was opened on, for a connection of the watcher's own
	// Grew is called when the log may have grown.
	Grew func()
	// Subscribed reports whether anyone is subscribed: a watcher that
	// polls does so only then.
	Subscribed func() bool
	// PollInterval is how often a polling watcher looks.
	PollInterval time.Duration
	// Log is where a watcher logs, at Info and Warn, what an operator
	// should know: a listener that reconnects.
	Log *slog.Logger
	// Failures returns the function a watcher reports each attempt's
	// error (nil for success) to, for what; it logs the first failure of
	// a run and the recovery.
	Failures func(what string) func(ctx context.Context, err error)
}

// Pipeliner is implemented by an engine whose driver can send several
// statements in one round trip. Append then runs in two round trips
// instead of one per statement.
type Pipeliner interface {
	// Pipeline sends stmts on conn together and reads their results in
	// order, scanning the one row of each statement that has a Dest. At
	// the first error the statements after it do not run, and Pipeline
	// returns the error as a *PipeError, which names its statement.
	Pipeline(ctx context.Context, conn *sql.Conn, stmts []PipeStmt) error
	// BeginAppendSQL are the statements that begin an append's
	// transaction and try to take the append lock without waiting, each
	// one a statement of its own: the last returns one boolean, whether
	// it got the lock, and a statement sent after them reads with a
	// snapshot taken after the lock was granted.
	BeginAppendSQL() []string
	// LockAppendSQL takes the append lock, waiting for it.
	LockAppendSQL() string
	// CommitOutcome tells what err, the error of a pipeline whose
	// statement commit is the COMMIT of an append, says about whether the
	// transaction committed.
	CommitOutcome(err error, commit int) CommitResult
}

// PipeStmt is one statement of a pipeline.
type PipeStmt struct {
	What  string // what it does, for its error
	Query string // with the engine's placeholders
	Args  []any
	Dest  []any // where its one row goes; nil for a statement whose rows are not read
	// Affected, when set and Dest is nil, receives how many rows the
	// statement changed.
	Affected *int64
}

// PipeError is the error of statement I of a pipeline; I is the number
// of statements when each was answered and the pipeline failed after.
type PipeError struct {
	I    int
	What string
	Err  error
}

// Error names the statement.
func (e *PipeError) Error() string { return e.What + ": " + e.Err.Error() }

// Unwrap returns the statement's error.
func (e *PipeError) Unwrap() error { return e.Err }

// CommitResult is what the error of a pipeline that ends in COMMIT says
// about the transaction.
type CommitResult int

// The outcomes of a COMMIT.
const (
	CommitUnknown CommitResult = iota // the COMMIT may have run: settle
	CommitFailed                      // surely not committed
	Committed                         // the COMMIT's answer came
)

// Awaiter is implemented by an engine whose append transactions can
// outlive the client that sent their COMMIT (PostgreSQL's server-side
// sessions). StoredAfterAppends reports whether the event with id
// eventID is stored, read once every append transaction open when it was
// called has ended.
type Awaiter interface {
	StoredAfterAppends(ctx context.Context, db *sql.DB, eventID string) (bool, error)
}

// TimesAsText is implemented by an engine whose driver reads datetime
// columns faster as text.
type TimesAsText interface {
	// TextTime returns a select expression for the datetime column col
	// that yields its stored text.
	TextTime(col string) string
}

// Discard closes conn and keeps it from going back to the pool.
func Discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
