package persistence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/peonhq/peon/internal/clip"
)

// The recorded gaps in the export format. A compacted store's export
// begins with one line per record of the compactions table (by
// first_sequence), then one per compacted command (by command_id), then
// the events:
//
//	{"compaction":{"first_sequence":9,"last_sequence":14,"stream":"thread:t1",
//	 "first_version":5,"last_version":10,"events":4,"bytes":310,
//	 "compacted_at":"2026-12-02T16:00:00.123456Z"}}
//	{"compacted_command":{"command_id":"c-7","events":3,"compacted_at":"…"}}
//
// Import accepts a hole in the sequences or a stream's versions only
// where such a line declares one, and stores the lines with the events.

// compactionLine is a compactions row in the export format.
type compactionLine struct {
	FirstSequence int64     `json:"first_sequence"`
	LastSequence  int64     `json:"last_sequence"`
	Stream        string    `json:"stream"`
	FirstVersion  int64     `json:"first_version"`
	LastVersion   int64     `json:"last_version"`
	Events        int64     `json:"events"`
	Bytes         int64     `json:"bytes"`
	CompactedAt   time.Time `json:"compacted_at"`
}

// compactedCommandLine is a compacted_commands row in the export format.
type compactedCommandLine struct {
	CommandID   string    `json:"command_id"`
	Events      int64     `json:"events"`
	CompactedAt time.Time `json:"compacted_at"`
}

// exportGaps writes the recorded gaps of the store, read through q, to w
// and returns how many lines it wrote.
func (s *Store) exportGaps(ctx context.Context, q querier, w io.Writer) (int64, error) {
	var n int64
	var line []byte
	rows, err := q.QueryContext(ctx, "SELECT first_sequence, last_sequence, stream_id, first_version, last_version, events, bytes, compacted_at FROM compactions ORDER BY first_sequence")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var c compactionLine
		var at storedTime
		if err := rows.Scan(&c.FirstSequence, &c.LastSequence, &c.Stream, &c.FirstVersion, &c.LastVersion, &c.Events, &c.Bytes, &at); err != nil {
			rows.Close()
			return n, err
		}
		if c.CompactedAt, err = at.time(); err != nil {
			rows.Close()
			return n, err
		}
		line = append(line[:0], `{"compaction":{"first_sequence":`...)
		line = strconv.AppendInt(line, c.FirstSequence, 10)
		line = append(line, `,"last_sequence":`...)
		line = strconv.AppendInt(line, c.LastSequence, 10)
		line = append(line, `,"stream":`...)
		line = appendJSONString(line, c.Stream)
		line = append(line, `,"first_version":`...)
		line = strconv.AppendInt(line, c.FirstVersion, 10)
		line = append(line, `,"last_version":`...)
		line = strconv.AppendInt(line, c.LastVersion, 10)
		line = append(line, `,"events":`...)
		line = strconv.AppendInt(line, c.Events, 10)
		line = append(line, `,"bytes":`...)
		line = strconv.AppendInt(line, c.Bytes, 10)
		line = append(line, `,"compacted_at":"`...)
		line = c.CompactedAt.UTC().AppendFormat(line, time.RFC3339Nano)
		line = append(line, "\"}}\n"...)
		if _, err := w.Write(line); err != nil {
			rows.Close()
			return n, err
		}
		n++
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return n, err
	}
	rows, err = q.QueryContext(ctx, "SELECT command_id, events, compacted_at FROM compacted_commands ORDER BY command_id"+s.d.ByteOrder())
	if err != nil {
		return n, err
	}
	defer rows.Close()
	for rows.Next() {
		var c compactedCommandLine
		var at storedTime
		if err := rows.Scan(&c.CommandID, &c.Events, &at); err != nil {
			return n, err
		}
		if c.CompactedAt, err = at.time(); err != nil {
			return n, err
		}
		line = append(line[:0], `{"compacted_command":{"command_id":`...)
		line = appendJSONString(line, c.CommandID)
		line = append(line, `,"events":`...)
		line = strconv.AppendInt(line, c.Events, 10)
		line = append(line, `,"compacted_at":"`...)
		line = c.CompactedAt.UTC().AppendFormat(line, time.RFC3339Nano)
		line = append(line, "\"}}\n"...)
		if _, err := w.Write(line); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// importGaps is what an import's gap lines declared, in their order.
type importGaps struct {
	compactions []compactionLine
	commands    []compactedCommandLine
	set         gapSet
}

var (
	compactionPrefix       = []byte(`{"compaction":`)
	compactedCommandPrefix = []byte(`{"compacted_command":`)
)

// gapLine reads b when it is a gap line, and reports whether it was.
func (g *importGaps) gapLine(b []byte) (bool, error) {
	b = bytes.TrimSpace(b)
	var into any
	var c struct {
		Compaction *compactionLine `json:"compaction"`
	}
	var cc struct {
		CompactedCommand *compactedCommandLine `json:"compacted_command"`
	}
	switch {
	case bytes.HasPrefix(b, compactionPrefix):
		into = &c
	case bytes.HasPrefix(b, compactedCommandPrefix):
		into = &cc
	default:
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return true, fmt.Errorf("not a gap record: %w", err)
	}
	switch {
	case c.Compaction != nil:
		l := *c.Compaction
		if l.Stream == "" || l.FirstSequence < 0 || l.LastSequence <= l.FirstSequence || l.LastVersion <= l.FirstVersion || l.FirstVersion < 0 ||
			l.Events < 1 || l.Events > l.LastSequence-l.FirstSequence || l.Events > l.LastVersion-l.FirstVersion {
			return true, fmt.Errorf("compaction of %s at %d..%d does not hold together", clip.String(l.Stream), l.FirstSequence, l.LastSequence)
		}
		g.compactions = append(g.compactions, l)
		g.set.gaps = append(g.set.gaps, gap{Stream: l.Stream, First: l.FirstSequence, Last: l.LastSequence,
			FirstVersion: l.FirstVersion, LastVersion: l.LastVersion, Events: l.Events, Bytes: l.Bytes})
		g.set.index()
	case cc.CompactedCommand != nil:
		l := *cc.CompactedCommand
		if l.CommandID == "" || l.Events < 1 {
			return true, errors.New("compacted command without an id or events")
		}
		g.commands = append(g.commands, l)
	default:
		return true, errors.New("an empty gap record")
	}
	return true, nil
}

// store writes the declared gaps through tx.
func (s *Store) storeGaps(ctx context.Context, tx querier, g *importGaps) error {
	for _, c := range g.compactions {
		if _, err := tx.ExecContext(ctx, s.d.Bind(`INSERT INTO compactions (first_sequence, last_sequence, stream_id, first_version, last_version, events, bytes, compacted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), c.FirstSequence, c.LastSequence, c.Stream, c.FirstVersion, c.LastVersion, c.Events, c.Bytes, c.CompactedAt.UTC()); err != nil {
			return fmt.Errorf("compaction at %d: %w", c.FirstSequence, err)
		}
	}
	for _, c := range g.commands {
		if _, err := tx.ExecContext(ctx, s.d.Bind(`INSERT INTO compacted_commands (command_id, events, compacted_at) VALUES (?, ?, ?)`),
			c.CommandID, c.Events, c.CompactedAt.UTC()); err != nil {
			return fmt.Errorf("compacted command %s: %w", clip.Quote(c.CommandID), err)
		}
	}
	return nil
}
