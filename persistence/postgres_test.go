package persistence_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence/persistencetest"
)

// postgresEnv names the server the PostgreSQL tests and benchmarks use.
const postgresEnv = "PEON_TEST_POSTGRES_URL"

// postgresURL returns $PEON_TEST_POSTGRES_URL or skips the test.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(postgresEnv)
	if u == "" {
		tb.Skip(postgresEnv + " is not set; set it to a PostgreSQL URL, such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	return u
}

// newSchema creates an empty schema on the server of base, drops it with
// everything in it when the test ends, and returns base with the schema as
// its search_path (pgx passes unknown URL parameters to the server as
// runtime parameters).
func newSchema(tb testing.TB, base string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "peon_test_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(tb, exec(ctx, "CREATE SCHEMA "+schema))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	base := postgresURL(t)
	persistencetest.Run(t, persistencetest.Harness{
		NewDSN:        func(t *testing.T) string { return newSchema(t, base) },
		Durable:       true,
		ValidatesJSON: true,
		TimePrecision: time.Microsecond,
	})
}
