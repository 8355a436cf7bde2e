package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/internal/engine"
)

// safeToRetry is an error that pgx reports as sent to no server.
type safeToRetry struct{}

func (safeToRetry) Error() string     { return "write failed before any byte was sent" }
func (safeToRetry) SafeToRetry() bool { return true }

// safeEOF is a lost connection that pgx reports as safe to retry.
type safeEOF struct{}

func (safeEOF) Error() string     { return "unexpected EOF" }
func (safeEOF) SafeToRetry() bool { return true }
func (safeEOF) Unwrap() error     { return io.ErrUnexpectedEOF }

// TestCommitOutcome pins how the error of an append's last pipeline
// (INSERTs, projection, COMMIT at index commit) is read, with the shapes
// that TestCrashAppendTerminatedBackends meets: a terminated backend's
// FATAL 57P01 before the COMMIT (nothing ran after it), at the COMMIT
// (it may have committed: settle looks), and after the COMMIT's answer.
func TestCommitOutcome(t *testing.T) {
	t.Parallel()
	const commit = 5
	terminated := &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}
	at := func(i int, err error) error {
		return fmt.Errorf("append to settings: %w", &engine.PipeError{I: i, What: "statement", Err: err})
	}
	tests := []struct {
		name string
		err  error
		want engine.CommitResult
	}{
		{"TerminatedBeforeCommit", at(2, terminated), engine.CommitFailed},
		{"TerminatedAtFirstStatement", at(0, terminated), engine.CommitFailed},
		{"ErrorBeforeCommit", at(commit-1, &pgconn.PgError{Severity: "ERROR", Code: "23505"}), engine.CommitFailed},
		{"TerminatedAtCommit", at(commit, terminated), engine.CommitUnknown},
		{"CanceledAtCommit", at(commit, &pgconn.PgError{Severity: "ERROR", Code: "57014"}), engine.CommitUnknown},
		{"SerializationFailureAtCommit", at(commit, &pgconn.PgError{Severity: "ERROR", Code: "40001"}), engine.CommitFailed},
		{"ConnectionLostAtCommit", at(commit, io.ErrUnexpectedEOF), engine.CommitUnknown},
		{"ConnectionLostBeforeCommit", at(1, io.ErrUnexpectedEOF), engine.CommitUnknown},
		{"NothingSent", at(0, safeToRetry{}), engine.CommitFailed},
		{"ConnectionLostSafeToRetry", at(0, safeEOF{}), engine.CommitUnknown},
		{"SafeToRetryAfterFirstAnswer", at(2, safeToRetry{}), engine.CommitUnknown},
		{"TerminatedAfterCommitAnswer", at(commit+1, terminated), engine.Committed},
		{"NotAPipelineError", fmt.Errorf("append: %w", context.Canceled), engine.CommitUnknown},
		{"Unwrapped", errors.New("driver: bad connection"), engine.CommitUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Engine{}.CommitOutcome(tt.err, commit), "%v", tt.err)
		})
	}
}
