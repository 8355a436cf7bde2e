package orchestration

import (
	"unicode/utf16"
	"unicode/utf8"
)

// The canonical form of a JSON value, the one form in which the store
// keeps a value such as SettingChanged.Value (in the payload, the
// projection and the export alike):
//
//   - no whitespace between tokens;
//   - strings escaped as Encode escapes string fields: `"` and `\` with a
//     backslash, \b \f \n \r \t by those letters, other control
//     characters as \u00XX, U+2028 and U+2029 as \u2028 and \u2029, a
//     lone UTF-16 surrogate as its \uXXXX escape in lower case; every
//     other character as itself in UTF-8 (no HTML escaping of < > &, no
//     escaped slash);
//   - numbers, literals, object keys in their order and duplicate keys as
//     given.
//
// It is the same JSON value: any decoder reads the same value from the
// canonical form as from the original.

// canonicalJSON returns v, which must be one well-formed JSON value in
// UTF-8, in canonical form: v itself when it is in that form already, a
// new slice otherwise. ok is false, and out nil, for input that is not
// well-formed JSON in UTF-8 as far as the rewrite notices.
func canonicalJSON(v []byte) (out []byte, ok bool) {
	// out stays nil while v[:i] is canonical; the first change copies it.
	keep := func(i int) {
		if out == nil {
			out = append(make([]byte, 0, len(v)), v[:i]...)
		}
	}
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case ' ', '\t', '\n', '\r':
			keep(i)
			i++
		case '"':
			end, canonical, ok := scanCanonicalString(v, i)
			if !ok {
				return nil, false
			}
			if !canonical {
				keep(i)
				var good bool
				if out, good = appendCanonicalString(out, v[i:end]); !good {
					return nil, false
				}
			} else if out != nil {
				out = append(out, v[i:end]...)
			}
			i = end
		default:
			if out != nil {
				out = append(out, c)
			}
			i++
		}
	}
	if out == nil {
		return v, true
	}
	return out, true
}

// scanCanonicalString finds the end of the JSON string that starts at
// v[i] (a quote) and reports whether it is in canonical form already.
func scanCanonicalString(v []byte, i int) (end int, canonical, ok bool) {
	canonical = true
	for j := i + 1; j < len(v); {
		c := v[j]
		switch {
		case c == '"':
			return j + 1, canonical, true
		case c < 0x20:
			return 0, false, false
		case c == '\\':
			if j+1 >= len(v) {
				return 0, false, false
			}
			switch v[j+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				j += 2
				continue
			case 'u':
				r, ok := hex4(v, j+2)
				if !ok {
					return 0, false, false
				}
				if !canonicalEscape(r, v, j) {
					canonical = false
				}
				j += 6
				continue
			default: // \/ and anything else
				canonical = false
				j += 2
				continue
			}
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(v[j:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, false
			}
			if r == '\u2028' || r == '\u2029' {
				canonical = false
			}
			j += size
		}
	}
	return 0, false, false
}

// canonicalEscape reports whether the \u escape of r at v[j:j+6] is how
// the canonical form writes r: a control character without a letter of
// its own, U+2028, U+2029 or a lone surrogate, in lower-case hex.
func canonicalEscape(r rune, v []byte, j int) bool {
	switch {
	case r < 0x20:
		switch r {
		case '\b', '\f', '\n', '\r', '\t':
			return false
		}
	case r == '\u2028', r == '\u2029':
	case utf16.IsSurrogate(r):
		// A pair is written as its character; a lone half as it is.
		if r < 0xdc00 && j+12 <= len(v) && v[j+6] == '\\' && v[j+7] == 'u' {
			if low, ok := hex4(v, j+8); ok && 0xdc00 <= low && low < 0xe000 {
				return false
			}
		}
		if r >= 0xdc00 && j >= 6 && v[j-6] == '\\' && v[j-5] == 'u' {
			if high, ok := hex4(v, j-4); ok && 0xd800 <= high && high < 0xdc00 {
				return false // the second half of a pair
			}
		}
	default:
		return false
	}
	for _, c := range v[j+2 : j+6] {
		if 'A' <= c && c <= 'F' {
			return false
		}
	}
	return true
}

// appendCanonicalString appends the JSON string s (quotes included) to
// dst in canonical form.
func appendCanonicalString(dst, s []byte) ([]byte, bool) {
	dst = append(dst, '"')
	for j := 1; j < len(s)-1; {
		c := s[j]
		if c != '\\' {
			r, size := rune(c), 1
			if c >= utf8.RuneSelf {
				r, size = utf8.DecodeRune(s[j:])
			}
			dst = appendCanonicalRune(dst, r, s[j:j+size])
			j += size
			continue
		}
		switch e := s[j+1]; e {
		case '"', '\\':
			dst = append(dst, '\\', e)
		case '/':
			dst = append(dst, '/')
		case 'b', 'f', 'n', 'r', 't':
			dst = append(dst, '\\', e)
		case 'u':
			r, ok := hex4(s, j+2)
			if !ok {
				return nil, false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && j+6 <= len(s) && s[j] == '\\' && s[j+1] == 'u' {
					if low, ok := hex4(s, j+2); ok && 0xdc00 <= low && low < 0xe000 {
						dst = utf8.AppendRune(dst, utf16.DecodeRune(r, low))
						j += 6
						continue
					}
				}
				dst = appendEscape(dst, r) // a lone half stays escaped
				continue
			}
			dst = appendCanonicalRune(dst, r, nil)
			continue
		default:
			return nil, false
		}
		j += 2
	}
	return append(dst, '"'), true
}

// appendCanonicalRune appends r, whose UTF-8 bytes are raw when at hand,
// as the canonical form writes it inside a string.
func appendCanonicalRune(dst []byte, r rune, raw []byte) []byte {
	switch r {
	case '"', '\\':
		return append(dst, '\\', byte(r))
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\u2028', '\u2029':
		return appendEscape(dst, r)
	}
	if r < 0x20 {
		return appendEscape(dst, r)
	}
	if raw != nil {
		return append(dst, raw...)
	}
	return utf8.AppendRune(dst, r)
}

// appendEscape appends r as \uXXXX in lower-case hex.
func appendEscape(dst []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
