package projector

import "github.com/peonhq/peon/internal/sqlx"

// Deferrer is implemented by a querier that can hold back statements
// whose results nobody reads and send them together with the next
// statement run through it, or with the transaction's COMMIT: one round
// trip for all of them. Statements still run in the order they were
// given. The error of a held-back statement is a *DeferredError, returned
// by whichever call sent it.
type Deferrer interface {
	sqlx.Querier
	// Defer queues query; what names it in its error.
	Defer(what, query string, args ...any)
}

// DeferredError is the error of a statement a Deferrer held back. What
// names that statement, which is not the one the call returning the
// error ran.
type DeferredError struct {
	What string
	Err  error
}

func (e *DeferredError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *DeferredError) Unwrap() error { return e.Err }
