package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

// The store's names for the engine seam (see package internal/engine):
// everything the store does differently on SQLite and PostgreSQL sits
// behind it, and nothing above it compares an engine's name.
type (
	dialect      = engine.Engine
	pipeliner    = engine.Pipeliner
	pipeStmt     = engine.PipeStmt
	pipeError    = engine.PipeError
	commitResult = engine.CommitResult
	awaiter      = engine.Awaiter
	timesAsText  = engine.TimesAsText
	querier      = engine.Querier
	statsDialect = engine.Statser
)

// The outcomes of a pipelined append's COMMIT.
const (
	commitUnknown = engine.CommitUnknown
	commitFailed  = engine.CommitFailed
	committed     = engine.Committed
)

// lockAppend takes the engine's append lock in tx, and translates its
// refusal of the transaction's isolation into ErrTxIsolation.
func (s *Store) lockAppend(ctx context.Context, q querier) error {
	err := s.d.LockAppend(ctx, q)
	if ie := (*engine.IsolationError)(nil); errors.As(err, &ie) {
		return fmt.Errorf("%w: %s", ErrTxIsolation, ie.Detail)
	}
	return err
}

// queryInt64 runs a query that returns one integer (NULL reads as 0).
func queryInt64(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	return sqlx.QueryInt64(ctx, q, query, args...)
}

// queryString runs a query that returns one text value (no row or NULL
// read as "").
func queryString(ctx context.Context, q querier, query string, args ...any) (string, error) {
	return sqlx.QueryString(ctx, q, query, args...)
}

// discard closes conn and keeps it from going back to the pool.
func discard(conn *sql.Conn) { engine.Discard(conn) }
