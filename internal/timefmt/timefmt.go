// Package timefmt parses the fixed timestamp layouts the store itself
// writes, without time.Parse's layout interpretation: the hot paths of
// replay read one or two timestamps per event.
package timefmt

import "time"

// ParseUTC parses "2006-01-02<sep>15:04:05<zone>" with no fraction or a
// fraction of 1 to 9 digits before zone, such as ParseUTC(b, 'T', "Z")
// for time.Time's JSON form of a UTC time, or ParseUTC(s, ' ', "+00:00")
// for SQLite's text layout. It checks the ranges time.Parse checks and
// returns false for any other text.
func ParseUTC[S string | []byte](s S, sep byte, zone string) (time.Time, bool) {
	n := len(s) - len(zone)
	if n < 19 || string(s[n:]) != zone || s[4] != '-' || s[7] != '-' || s[10] != sep || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19:n]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		f, ok := digits(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// digits parses a run of ASCII digits.
func digits[S string | []byte](s S) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days of month m of year.
func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
