package persistence

import (
	"errors"
	"fmt"

	"github.com/peonhq/peon/internal/clip"
)

// Sentinels for what callers branch on. The typed errors below carry the
// details and match these with errors.Is.
var (
	// ErrVersionConflict: a stream's current version is not the one an
	// Append expected. Nothing was written.
	ErrVersionConflict = errors.New("version conflict")
	// ErrInvalidEvent: an event of an Append is not structurally valid.
	// Nothing was written.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrMigration: the database's migrations cannot be brought in step
	// with this build (a tampered directory, a newer database).
	ErrMigration = errors.New("migration refused")
	// ErrTxIsolation: AppendTx was given a PostgreSQL transaction under
	// REPEATABLE READ or SERIALIZABLE. Its snapshot may predate the
	// append lock, so the head and versions it would read could be stale
	// (docs/ORDERING.md). Nothing was written and the caller's transaction
	// is still usable; begin it READ COMMITTED, PostgreSQL's default.
	ErrTxIsolation = errors.New("transaction isolation refused")
	// ErrStreamPruned: an Append to a stream that retention pruned
	// (Store.Prune). A pruned stream takes no more events; nothing was
	// written and no sequence was taken. A *StreamPrunedError names it.
	ErrStreamPruned = errors.New("stream pruned")
)

// Sentinels of opening a database that is not, or not yet, a store this
// build may use as it is.
var (
	// ErrNotStore: the database is not a peon store. It holds tables but
	// no peon migrations (another application's database: see
	// Options.Adopt), or, opened read-only, it is empty or absent. Nothing
	// was changed. A *NotStoreError says what it holds.
	ErrNotStore = errors.New("not a peon store")
	// ErrMigrationPending: a store opened read-only (Options.ReadOnly)
	// lacks migrations of this build. Nothing was changed; migrate it
	// (Migrate, `peon-store migrate`) or open it without ReadOnly.
	ErrMigrationPending = errors.New("migrations pending")
	// ErrReadOnly: a write (Append, Import, Rebuild, CatchUp…) to a store
	// opened with Options.ReadOnly. Nothing was written.
	ErrReadOnly = errors.New("store is read-only")
)

// VersionConflictError says which stream of an Append had another version
// than expected. It matches ErrVersionConflict.
type VersionConflictError struct {
	Stream   string
	Expected int64 // NoStream (0) when the stream was expected not to exist
	Actual   int64 // 0 when the stream does not exist
}

func (e *VersionConflictError) Error() string {
	stream := clip.String(e.Stream)
	if e.Expected == NoStream {
		return fmt.Sprintf("version conflict on %s: expected no stream, it is at version %d", stream, e.Actual)
	}
	return fmt.Sprintf("version conflict on %s: expected version %d, it is at version %d", stream, e.Expected, e.Actual)
}

// Is reports whether target is ErrVersionConflict.
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// StreamPrunedError says which stream of an Append was pruned. It
// matches ErrStreamPruned.
type StreamPrunedError struct {
	Stream string
}

func (e *StreamPrunedError) Error() string {
	return fmt.Sprintf("stream %s was pruned: it takes no more events", clip.String(e.Stream))
}

// Is reports whether target is ErrStreamPruned.
func (e *StreamPrunedError) Is(target error) bool { return target == ErrStreamPruned }

// InvalidEventError says which event of an Append is invalid and why. It
// matches ErrInvalidEvent; Err is usually an *orchestration.FieldError.
type InvalidEventError struct {
	Index int    // position of the event in the Append (or the Import), from 0
	Type  string // its type name, "" for a nil event or when unknown
	Err   error
}

func (e *InvalidEventError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("invalid event %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("invalid event %d (%s): %v", e.Index, clip.String(e.Type), e.Err)
}

// Is reports whether target is ErrInvalidEvent.
func (e *InvalidEventError) Is(target error) bool { return target == ErrInvalidEvent }

// Unwrap returns the reason.
func (e *InvalidEventError) Unwrap() error { return e.Err }

// DecodeError is yielded by replays and reads for a stored row that cannot
// be turned back into an event: an unknown type or a broken payload. The
// replay goes on after it.
type DecodeError struct {
	Sequence int64
	Type     string
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode event %d (%s): %v", e.Sequence, clip.String(e.Type), e.Err)
}

// Unwrap returns the reason.
func (e *DecodeError) Unwrap() error { return e.Err }
