package persistence

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzImportLine checks one line of the export format without a database:
// a line is refused with an error or accepted, and an accepted line
// encodes back to a line that is accepted as the same record and encodes
// to the same bytes again.
func FuzzImportLine(f *testing.F) {
	f.Add([]byte(`{"sequence":1,"event_id":"0190f4a2-7c3e-7000-8000-000000000001","stream":"thread:t1","version":1,"type":"message.delta","occurred_at":"2026-11-28T09:00:00Z","recorded_at":"2026-11-28T09:00:01Z","command_id":null,"correlation_id":"c","causation_id":null,"data":{"thread_id":"t1","turn_id":"u","message_id":"m","delta":"a\u2028\"b","at":"2026-11-28T09:00:00Z"}}`))
	f.Add([]byte(`{"sequence":1,"event_id":"0190f4a2-7c3e-7000-8000-000000000001","stream":"thread:t1","version":1,"type":"message.delta","schema_version":1,"occurred_at":"2026-11-28T09:00:00Z","recorded_at":"2026-11-28T09:00:01Z","command_id":null,"correlation_id":"c","causation_id":null,"data":{"thread_id":"t1","turn_id":"u","message_id":"m","delta":"a\u2028\"b","at":"2026-11-28T09:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		for line := range bytes.Lines(in) {
			v := importValidator{versions: map[string]int64{}}
			rec, err := v.line(bytes.TrimSpace(line))
			if err != nil {
				continue
			}
			out, err := AppendJSONL(nil, &rec)
			require.NoError(t, err)
			again := importValidator{versions: map[string]int64{}}
			rec2, err := again.line(bytes.TrimSuffix(out, []byte("\n")))
			require.NoError(t, err, "%s", out)
			require.Equal(t, rec.Payload, rec2.Payload)
			require.True(t, rec.RecordedAt.Equal(rec2.RecordedAt))
			out2, err := AppendJSONL(nil, &rec2)
			require.NoError(t, err)
			require.Equal(t, string(out), string(out2))
		}
	})
}
