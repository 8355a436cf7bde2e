package persistence_test

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
)

// dsnSeeds are the seed corpus of FuzzParseDSN besides testdata/fuzz.
var dsnSeeds = []string{
	"", " ", ":memory:", "sqlite://:memory:", "sqlite://file::memory:?cache=shared",
	"peon.db", "./data/peon.db", "/var/lib/peon/peon.db", "sqlite:///abs/peon.db", "sqlite://rel.db?_fk=1",
	"sqlite://", "sqlite://?x=1", "file:peon.db", "file::memory:", "a?b", "a#b", "a\x00b",
	"postgres://u:secret@localhost:5432/peon?sslmode=disable", "postgresql://localhost/peon",
	"postgres://u:p@ss@host/db", "postgres://u@host/db?password=secret", "postgres://:secret@host",
	"mysql://root@localhost/peon", "http://x", "://", "sqlite:peon.db", "SQLITE://x.db", "Postgres://h/db",
	"sqlite://a#b", "sqlite://a\x00b", "sqlite://file:x.db", "sqlite://dev?mode=memory", "postgres://h/db?pass%77ord=secret&x=1#frag",
	"postgres://h/db?sslpassword=secret", "postgresql://u:s%40cret@[::1]:5432/db?sslmode=require",
}

// FuzzParseDSN: ParseDSN never panics, and what it accepts is classified
// consistently: a PostgreSQL URL goes to the driver unchanged; a SQLite
// file path is a plain path (no query, fragment or NUL, not a file: URI,
// which SQLite would read as a URI); :memory: is private memory; and no
// password of a URL (user info or password= parameter) shows in Display
// or in an error.
func FuzzParseDSN(f *testing.F) {
	for _, s := range dsnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		target, err := persistence.ParseDSN(dsn)
		// Only a URL (scheme://…, with a scheme as RFC 3986 spells one)
		// other than sqlite:// has a password; any other input is a path or
		// garbage, whose text an error may show as is ("//:0@#0" is a path,
		// not a scheme-relative URL; "?password=://" has no scheme).
		secret := ""
		if scheme, _, ok := strings.Cut(dsn, "://"); ok && urlScheme.MatchString(scheme) && scheme != "sqlite" {
			secret = urlPassword(dsn)
		}
		if err != nil {
			require.NotEmpty(t, err.Error())
			if secret != "" {
				// The URL an error quotes, read as a driver would read it,
				// carries no password but the mask. (A plain search for the
				// secret is no oracle: "A://:p@#:p@" masks its password and
				// still shows ":p@" in the fragment.)
				msg := err.Error()
				quoted, qerr := strconv.QuotedPrefix(strings.TrimPrefix(msg, "open "))
				require.NoError(t, qerr, "an error about a URL quotes it: %s", msg)
				shown, _ := strconv.Unquote(quoted)
				if p := urlPassword(shown); p != "" {
					require.Equal(t, "xxxxx", p, "an error shows the password: %s", msg)
				}
			}
			require.Zero(t, target)
			return
		}
		switch target.Dialect {
		case "postgres":
			require.True(t, strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"), "postgres from %q", dsn)
			require.Equal(t, dsn, target.DSN)
			require.False(t, target.Memory)
			if secret != "" && secret != "xxxxx" {
				require.Equal(t, "xxxxx", urlPassword(target.Display), "Display %q of %q keeps a password", target.Display, dsn)
			}
		case "sqlite":
			require.NotEmpty(t, target.DSN)
			if target.Memory {
				require.Equal(t, ":memory:", target.DSN)
				break
			}
			require.NotContains(t, target.DSN, "?", "a SQLite path with a query from %q", dsn)
			require.NotContains(t, target.DSN, "#")
			require.NotContains(t, target.DSN, "\x00")
			require.False(t, strings.HasPrefix(target.DSN, "file:"), "a file: URI as a SQLite path from %q", dsn)
			require.NotEqual(t, ":memory:", target.DSN)
			require.NotEmpty(t, strings.TrimSpace(target.DSN))
			require.Equal(t, target.DSN, target.Display)
		default:
			t.Fatalf("dialect %q from %q", target.Dialect, dsn)
		}
	})
}

// urlScheme is a URL scheme by RFC 3986.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// urlPassword returns the password a URL carries in its user info or as
// a password= parameter, as a driver would read it; "" when none.
func urlPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok && p != "" {
		return p
	}
	if p := u.Query().Get("password"); p != "" {
		return p
	}
	return u.Query().Get("sslpassword")
}

// TestParseDSN pins the classification and the messages, with the inputs
// FuzzParseDSN found wrong as regressions.
func TestParseDSN(t *testing.T) {
	t.Parallel()
	ok := []struct {
		dsn  string
		want persistence.Target
	}{
		{":memory:", persistence.Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}},
		{"sqlite://file::memory:?cache=shared", persistence.Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}},
		{"sqlite://dev?mode=memory&_fk=1", persistence.Target{Dialect: "sqlite", DSN: ":memory:", Memory: true, Display: ":memory:"}},
		{"data/peon.db", persistence.Target{Dialect: "sqlite", DSN: "data/peon.db", Display: "data/peon.db"}},
		{"sqlite:///var/lib/peon.db?_fk=1", persistence.Target{Dialect: "sqlite", DSN: "/var/lib/peon.db", Display: "/var/lib/peon.db"}},
		{"postgres://u:secret@h:5432/db?sslmode=disable", persistence.Target{Dialect: "postgres", DSN: "postgres://u:secret@h:5432/db?sslmode=disable", Display: "postgres://u:xxxxx@h:5432/db?sslmode=disable"}},
		// Found by review and FuzzParseDSN: an '@' in the password, a
		// password parameter (also percent-encoded).
		{"postgres://u:p@ss@h/db", persistence.Target{Dialect: "postgres", DSN: "postgres://u:p@ss@h/db", Display: "postgres://u:xxxxx@h/db"}},
		{"postgresql://u@h/db?password=secret&sslpassword=s2#f", persistence.Target{Dialect: "postgres", DSN: "postgresql://u@h/db?password=secret&sslpassword=s2#f", Display: "postgresql://u@h/db?password=xxxxx&sslpassword=xxxxx#f"}},
		{"postgres://h/db?pass%77ord=secret", persistence.Target{Dialect: "postgres", DSN: "postgres://h/db?pass%77ord=secret", Display: "postgres://h/db?pass%77ord=xxxxx"}},
	}
	for _, c := range ok {
		got, err := persistence.ParseDSN(c.dsn)
		require.NoError(t, err, c.dsn)
		require.Equal(t, c.want, got, c.dsn)
	}
	bad := map[string]string{
		"":                     "open: empty database path or URL",
		"  ":                   "open: empty database path or URL",
		"sqlite://":            `open "sqlite://": no file path after sqlite://`,
		"sqlite:// ":           `open " ": empty database path`, // FuzzParseDSN
		"a?b":                  `open "a?b": a SQLite path may not contain '?', '#' or NUL`,
		"A://:p@#:p@":          `open "A://:xxxxx@#:p@": unsupported scheme "A" (want a SQLite path, sqlite:// or postgres://)`,        // the fragment is not a password
		"?password=://":        `open "?password=://": unsupported scheme "?password=" (want a SQLite path, sqlite:// or postgres://)`, // no URL: shown as given
		"//:0@#0":              `open "//:0@#0": a SQLite path may not contain '?', '#' or NUL`,                                        // a path, not a URL: shown as given
		"sqlite://a#b":         `open "a#b": a SQLite path may not contain '?', '#' or NUL`,
		"sqlite://a\x00b":      `open "a\x00b": a SQLite path may not contain '?', '#' or NUL`,
		"file:peon.db":         `open "file:peon.db": SQLite URIs (file:…) are not supported; give a plain path, sqlite://<path> or :memory:`,
		"file::memory:":        `open "file::memory:": SQLite URIs (file:…) are not supported; give a plain path, sqlite://<path> or :memory:`,
		"sqlite://file:x.db":   `open "file:x.db": SQLite URIs (file:…) are not supported; give a plain path, sqlite://<path> or :memory:`,
		"mysql://root:pw@h/db": `open "mysql://root:xxxxx@h/db": unsupported scheme "mysql" (want a SQLite path, sqlite:// or postgres://)`,
		"Postgres://u:pw@h/db": `open "Postgres://u:xxxxx@h/db": unsupported scheme "Postgres" (want a SQLite path, sqlite:// or postgres://)`,
	}
	for dsn, want := range bad {
		_, err := persistence.ParseDSN(dsn)
		require.EqualError(t, err, want, "%q", dsn)
	}
}
