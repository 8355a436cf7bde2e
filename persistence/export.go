package persistence

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/peonhq/peon/orchestration"
)

// The export format is JSON Lines: one event per line, a JSON object with
// these keys in this order, and a newline:
//
//	{"sequence":1,"event_id":"…","stream":"project:p1","version":1,
//	 "type":"project.created","schema_version":1,
//	 "occurred_at":"2026-01-05T09:00:00Z",
//	 "recorded_at":"2026-01-05T09:00:00.123456Z","command_id":null,
//	 "correlation_id":null,"causation_id":null,"data":{…}}
//
// Times are UTC in RFC 3339 with as many fractional digits as they need;
// absent metadata ids are null; data is the event's payload object as
// orchestration.Encode writes the normalized event (a JSON value in
// canonical form, whatever build stored it). The same events always give the same
// bytes, whatever engine stored them.
//
// A store that retention pruned (Store.Prune) writes, after the recorded
// gaps of compaction (see export_gaps.go) and before the events, a line
// per pruned stream's Tombstone, in the order of their last sequence:
//
//	{"tombstone":{"stream":"thread:t4","last_version":3,"first_sequence":31,
//	 "last_sequence":33,"events":3,"bytes":171,"pruned_at":"2026-01-06T09:00:00Z"}}
//
// The sequences of the pruned events are missing from the lines that
// follow; Import accepts those holes inside a tombstone's range, as many
// as the tombstones count.

// AppendJSONL appends rec as one line of the export format, newline
// included, to dst. rec.Event must be set (a decoded record).
func AppendJSONL(dst []byte, rec *Recorded) ([]byte, error) {
	if rec.Event == nil {
		return dst, fmt.Errorf("export event %d (%s): it has no decoded event", rec.Sequence, rec.Type)
	}
	data, err := orchestration.Encode(orchestration.Normalize(rec.Event))
	if err != nil {
		return dst, fmt.Errorf("export event %d: %w", rec.Sequence, err)
	}
	dst = append(dst, `{"sequence":`...)
	dst = strconv.AppendInt(dst, rec.Sequence, 10)
	dst = append(dst, `,"event_id":`...)
	dst = appendJSONString(dst, rec.EventID)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, rec.StreamID)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, rec.StreamVersion, 10)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, rec.Type)
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendInt(dst, int64(rec.SchemaVersion), 10)
	dst = append(dst, `,"occurred_at":"`...)
	dst = rec.OccurredAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","recorded_at":"`...)
	dst = rec.RecordedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","command_id":`...)
	dst = appendNullable(dst, rec.CommandID)
	dst = append(dst, `,"correlation_id":`...)
	dst = appendNullable(dst, rec.CorrelationID)
	dst = append(dst, `,"causation_id":`...)
	dst = appendNullable(dst, rec.CausationID)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	dst = append(dst, "}\n"...)
	return dst, nil
}

// ExportOpts are the optional inputs of Export. A nil *ExportOpts is the
// same as the zero value.
type ExportOpts struct {
	// Progress, when set, is called now and then with the number of
	// events written so far and the number the export will write.
	Progress Progress
}

// Export writes the log to w in the export format, in sequence order,
// after the gaps compaction and pruning recorded (see export_gaps.go),
// holding a bounded number of events in memory. It reads everything from
// one snapshot, taken at its start: appends that commit while it runs do
// not make it longer, and a compaction or prune that runs meanwhile does
// not make its events and its gaps disagree (the file imports as the log
// was at the start). A stored row that cannot be decoded stops it with an
// error naming the row; nothing after that row is written. It returns the
// number of events written.
func (s *Store) Export(ctx context.Context, w io.Writer, opts *ExportOpts) (written int64, err error) {
	ctx, done := s.tel.op(ctx, "export", "export")
	defer func() { done(err, "events", written) }()
	if opts == nil {
		opts = &ExportOpts{}
	}
	if s.closed.Load() {
		return 0, ErrClosed
	}
	conn, end, err := s.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer end()
	total, err := queryInt64(ctx, conn, "SELECT COUNT(*) FROM events") // the first read takes the snapshot
	if err != nil {
		return 0, fmt.Errorf("export: count events: %w", err)
	}
	tombs, err := s.tombstones(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("export: read tombstones: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		n    int64
		line []byte
	)
	if _, err := s.exportGaps(ctx, conn, bw); err != nil {
		return 0, fmt.Errorf("export: recorded gaps: %w", err)
	}
	for i := range tombs {
		if _, err := bw.Write(appendTombstoneJSONL(line[:0], &tombs[i])); err != nil {
			return 0, fmt.Errorf("export: write: %w", err)
		}
	}
	for rec, err := range s.replayFrom(ctx, conn, 1) {
		if de := (*DecodeError)(nil); errors.As(err, &de) {
			return n, fmt.Errorf("export: %w; the log holds an event this build cannot read (run `peon-store verify`)", err)
		}
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		if line, err = AppendJSONL(line[:0], &rec); err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		if _, err := bw.Write(line); err != nil {
			return n, fmt.Errorf("export: write: %w", err)
		}
		n++
		if opts.Progress != nil && n%pageSize == 0 {
			opts.Progress(n, total)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export: write: %w", err)
	}
	if opts.Progress != nil {
		opts.Progress(n, total)
	}
	return n, nil
}

// appendNullable appends s as a JSON string, or null when it is empty.
func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and
// U+2029 escaped (as encoding/json does); no HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
