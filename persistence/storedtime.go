package persistence

import (
	"fmt"
	"strings"
	"time"

	"github.com/peonhq/peon/internal/timefmt"
)

// Reading datetime columns. modernc's driver turns a DATETIME column into a
// time.Time by trying time.Parse with several layouts, the first of which
// (t.String()'s) fails on every value the store writes: a fifth of a
// replay went there. A dialect whose driver is slow at it selects the
// columns as text instead, and storedTime parses the store's own layout
// directly, the others as the driver would, and only when asked (the
// `at` of an event that decodes comes from its payload).

// readColumns returns eventColumns as the select list of d.
func readColumns(d dialect) string {
	tt, ok := d.(timesAsText)
	if !ok {
		return eventColumns
	}
	return strings.NewReplacer("occurred_at", tt.TextTime("occurred_at"), "recorded_at", tt.TextTime("recorded_at")).
		Replace(eventColumns)
}

// storedTime scans a datetime column delivered as a time.Time or as text.
type storedTime struct {
	t    time.Time
	text string
	err  error // a value no layout reads: reported by time, for the row
}

// Scan implements sql.Scanner.
func (s *storedTime) Scan(src any) error {
	s.err = nil
	switch v := src.(type) {
	case time.Time:
		s.t, s.text = v, ""
	case string:
		s.text = v
	case []byte:
		s.text = string(v)
	case int64: // Unix seconds or milliseconds, as modernc reads them
		if v > 1e12 || v < -1e12 {
			s.t, s.text = time.UnixMilli(v), ""
		} else {
			s.t, s.text = time.Unix(v, 0), ""
		}
	default:
		// Not a scan failure: the row's other columns are fine, and the
		// reader reports this one as the row's DecodeError.
		s.t, s.text, s.err = time.Time{}, "", fmt.Errorf("unsupported datetime value of type %T", src)
	}
	return nil
}

// time returns the value in UTC.
func (s *storedTime) time() (time.Time, error) {
	if s.err != nil {
		return time.Time{}, s.err
	}
	if s.text == "" {
		return s.t.UTC(), nil
	}
	if t, ok := parseSQLiteUTC(s.text); ok {
		return t, nil
	}
	// Text the store did not write (by hand, in another layout): the
	// layouts modernc's driver reads, in its order; a time without a zone
	// is UTC (the store's _timezone).
	text := strings.TrimSuffix(s.text, "Z")
	for _, layout := range sqliteTimeLayouts {
		if t, err := time.ParseInLocation(layout, text, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time", s.text)
}

// sqliteTimeLayouts are the layouts modernc's driver parses, in its order.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseSQLiteUTC parses the layout the store writes through modernc with
// _time_format=sqlite&_timezone=UTC, "2006-01-02 15:04:05.999999999+00:00",
// with time.Parse's range checks. Any other text is false.
func parseSQLiteUTC(s string) (time.Time, bool) { return timefmt.ParseUTC(s, ' ', "+00:00") }
