package engine

import (
	"net/url"
	"strings"
)

// Redact hides a URL's password, in its user info or a password= (or
// sslpassword=) parameter. The user info ends at the last '@' before the
// path, as net/url and pgx read it.
func Redact(dsn string) string {
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
