package persistence

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/peonhq/peon/internal/clip"
	"github.com/peonhq/peon/orchestration"
)

// ErrCommandConflict: an Append's CommandID was stored before with other
// events. Nothing was written.
var ErrCommandConflict = errors.New("command conflict")

// CommandConflictError says that an Append's CommandID was stored before
// with other events than the Append's, and where. It matches
// ErrCommandConflict. Nothing was written.
//
// The events are the same, and the Append is a retry that returns the
// first records, when they have the same types, streams and data in the
// same order; their At time does not count (a command handled again stamps
// its events later), nor do the correlation and causation ids or the
// expected versions.
type CommandConflictError struct {
	CommandID string
	Sequences []int64 // where the command's events are stored, in order
	Reason    string  // the first difference, such as `event 1 differs in "name"`
}

func (e *CommandConflictError) Error() string {
	return fmt.Sprintf("command %s was stored before with other events, at %s: %s; a new command needs a new command id",
		clip.Quote(e.CommandID), sequenceList(e.Sequences), e.Reason)
}

// Is reports whether target is ErrCommandConflict.
func (e *CommandConflictError) Is(target error) bool { return target == ErrCommandConflict }

// sequenceList renders sequences for a message: "sequence 5",
// "sequences 5 to 7", or the first few of a list with gaps.
func sequenceList(seqs []int64) string {
	switch {
	case len(seqs) == 0:
		return "no sequence"
	case len(seqs) == 1:
		return "sequence " + strconv.FormatInt(seqs[0], 10)
	case seqs[len(seqs)-1]-seqs[0] == int64(len(seqs)-1):
		return fmt.Sprintf("sequences %d to %d", seqs[0], seqs[len(seqs)-1])
	}
	var sb strings.Builder
	sb.WriteString("sequences ")
	for i, s := range seqs {
		if i == 8 {
			fmt.Fprintf(&sb, ", … (%d in all)", len(seqs))
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.FormatInt(s, 10))
	}
	return sb.String()
}

// priorCommand returns the records that b's command stored before, inside
// q, when they hold b's events; else a *CommandConflictError. A command
// some of whose events compaction folded is recognised by its id and its
// number of events: its records are those that remain.
func (s *Store) priorCommand(ctx context.Context, q querier, b *batch) ([]Recorded, error) {
	prior, err := s.collect(ctx, q, b.opts.CommandID)
	if err != nil {
		return nil, fmt.Errorf("append to %s: look up command %s: %w", b.stream(), clip.Quote(b.opts.CommandID), err)
	}
	reason := b.differs(prior)
	if reason != "" {
		// Compaction may have folded some of the command's events: the
		// command is stored when it stored as many events as this append.
		n, err := queryInt64(ctx, q, s.d.Bind("SELECT COALESCE(MAX(events), -1) FROM compacted_commands WHERE command_id = ?"), b.opts.CommandID)
		if err != nil {
			return nil, fmt.Errorf("append to %s: look up command %s: %w", b.stream(), clip.Quote(b.opts.CommandID), err)
		}
		if n == int64(len(b.events)) {
			return prior, nil
		}
	}
	if reason != "" {
		seqs := make([]int64, len(prior))
		for i, r := range prior {
			seqs[i] = r.Sequence
		}
		return nil, &CommandConflictError{CommandID: b.opts.CommandID, Sequences: seqs, Reason: reason}
	}
	return prior, nil
}

// differs returns the first difference between b's events and prior, the
// records of b's command stored before, or "" when they are the same
// events (see CommandConflictError).
func (b *batch) differs(prior []Recorded) string {
	if len(prior) != len(b.events) {
		return fmt.Sprintf("it stored %d events, this append has %d", len(prior), len(b.events))
	}
	for i, e := range b.events {
		p := prior[i]
		switch {
		case p.Type != e.EventType():
			return fmt.Sprintf("event %d is a %s, the stored one a %s", i, e.EventType(), p.Type)
		case p.StreamID != e.StreamID():
			return fmt.Sprintf("event %d goes to %s, the stored one to %s", i, clip.String(e.StreamID()), clip.String(p.StreamID))
		}
		if field := differentField(e, orchestration.Normalize(p.Event)); field != "" {
			return fmt.Sprintf("event %d differs in %q", i, field)
		}
	}
	return ""
}

// differentField returns the JSON name of the first field but `at` in
// which a and b, normalized values of the same catalogued type, differ;
// "" when none does.
func differentField(a, b orchestration.Event) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return "type"
	}
	for i := range va.NumField() {
		name := jsonName(va.Type().Field(i))
		if name == "at" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return name
		}
	}
	return ""
}
