package persistence

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStoredTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		src  any
		want time.Time
	}{
		{"Time", want.In(time.FixedZone("x", 3600)), want},
		{"StoreLayout", "2026-11-28 09:00:00.123456789+00:00", want},
		{"StoreLayoutBytes", []byte("2026-11-28 09:00:00.123456789+00:00"), want},
		{"NoFraction", "2026-11-28 09:00:00+00:00", want.Truncate(time.Second)},
		{"Micros", "2026-11-28 09:00:00.123456+00:00", want.Truncate(time.Microsecond)},
		{"OtherOffset", "2026-11-28 10:00:00.123456789+01:00", want},
		{"TStringLayout", "2026-11-28 09:00:00.123456789 +0000 UTC", want},
		{"NoZone", "2026-11-28 09:00:00.123456789", want},
		{"ISO", "2026-11-28T09:00:00.123456789Z", want},
		{"Minutes", "2026-11-28 09:00", want.Truncate(time.Minute)},
		{"Date", "2026-11-28", want.Truncate(24 * time.Hour)},
		{"LeapDay", "2024-02-29 00:00:00+00:00", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"UnixSeconds", int64(want.Unix()), want.Truncate(time.Second)},
		{"UnixMillis", want.UnixMilli(), want.Truncate(time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s storedTime
			require.NoError(t, s.Scan(tc.src))
			got, err := s.time()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, time.UTC, got.Location())
		})
	}
	for _, bad := range []string{"2026-02-30 09:00:00+00:00", "2026-11-28 24:00:00+00:00", "yesterday", "2026-11-28 09:00:00.+00:00"} {
		var s storedTime
		require.NoError(t, s.Scan(bad))
		_, err := s.time()
		require.Error(t, err, bad)
	}
}

func TestParseSQLiteUTCMatchesTimeParse(t *testing.T) {
	t.Parallel()
	const layout = "2006-01-02 15:04:05.999999999-07:00"
	for _, s := range []string{
		"2026-11-28 09:00:00+00:00", "2026-11-28 09:00:00.5+00:00", "2026-11-28 09:00:00.000000001+00:00",
		"0001-01-01 00:00:00+00:00", "9999-12-31 23:59:59.999999999+00:00", "2000-02-29 12:00:00+00:00",
	} {
		want, err := time.Parse(layout, s)
		require.NoError(t, err)
		got, ok := parseSQLiteUTC(s)
		require.True(t, ok, s)
		require.Equal(t, want.UTC(), got, s)
	}
	for _, s := range []string{"1900-02-29 00:00:00+00:00", "2026-04-31 00:00:00+00:00", "2026-11-28 09:60:00+00:00", "2026-11-28 09:00:00.0000000001+00:00"} {
		_, ok := parseSQLiteUTC(s)
		require.False(t, ok, s)
	}
}
