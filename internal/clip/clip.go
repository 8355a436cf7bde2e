// Package clip shortens the values that error messages quote, so that a
// message stays readable whatever an id or a name holds: a long value is
// shown by its first bytes, an ellipsis and its full length.
package clip

import (
	"strconv"
	"unicode/utf8"
)

// Max is the longest value, in bytes, that is shown whole. A longer one
// shows its first Max-16 bytes.
const Max = 64

// Quote returns s quoted as strconv.Quote quotes it when s is at most Max
// bytes long; else the quoted first bytes of s (cut at a rune boundary),
// an ellipsis and the length of s: "thread:0123456789"… (1031 bytes).
func Quote(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	return strconv.Quote(head(s)) + suffix(s)
}

// String is Quote without the quotes: s when it is at most Max bytes
// long, else its first bytes, an ellipsis and its length.
func String(s string) string {
	if len(s) <= Max {
		return s
	}
	return head(s) + suffix(s)
}

// head returns the first bytes of s that Quote and String show.
func head(s string) string {
	n := Max - 16
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func suffix(s string) string { return "… (" + strconv.Itoa(len(s)) + " bytes)" }
