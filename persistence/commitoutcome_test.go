package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// safeToRetry is an error that pgx reports as sent to no server.
type safeToRetry struct{}

func (safeToRetry) Error() string     { return "write failed before any byte was sent" }
func (safeToRetry) SafeToRetry() bool { return true }

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
		return fmt.Errorf("append to settings: %w", &pipeError{i: i, what: "statement", err: err})
	}
	tests := []struct {
		name string
		err  error
		want commitResult
	}{
		{"TerminatedBeforeCommit", at(2, terminated), commitFailed},
		{"TerminatedAtFirstStatement", at(0, terminated), commitFailed},
		{"ErrorBeforeCommit", at(commit-1, &pgconn.PgError{Severity: "ERROR", Code: "23505"}), commitFailed},
		{"TerminatedAtCommit", at(commit, terminated), commitUnknown},
		{"CanceledAtCommit", at(commit, &pgconn.PgError{Severity: "ERROR", Code: "57014"}), commitUnknown},
		{"SerializationFailureAtCommit", at(commit, &pgconn.PgError{Severity: "ERROR", Code: "40001"}), commitFailed},
		{"ConnectionLostAtCommit", at(commit, io.ErrUnexpectedEOF), commitUnknown},
		{"ConnectionLostBeforeCommit", at(1, io.ErrUnexpectedEOF), commitUnknown},
		{"NothingSent", at(0, safeToRetry{}), commitFailed},
		{"TerminatedAfterCommitAnswer", at(commit+1, terminated), committed},
		{"NotAPipelineError", fmt.Errorf("append: %w", context.Canceled), commitUnknown},
		{"Unwrapped", errors.New("driver: bad connection"), commitUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, postgresDialect{}.commitOutcome(tt.err, commit), "%v", tt.err)
		})
	}
}
