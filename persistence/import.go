package persistence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/peonhq/peon/internal/clip"
	"github.com/peonhq/peon/orchestration"
)

// ErrNotEmpty: an Import into a store that already holds events, without
// ImportOpts.Force, or into which another writer appended while the import
// read its input. Nothing was written.
var ErrNotEmpty = errors.New("store is not empty")

// ErrStoreChanged: another writer appended to the store while an Import
// with ImportOpts.Force read its input, so the imported sequences no
// longer continue the store's. Nothing was written; run the import again.
var ErrStoreChanged = errors.New("the store changed during the import")

// ImportOpts are the optional inputs of Import. A nil *ImportOpts is the
// same as the zero value.
type ImportOpts struct {
	// Force imports into a store that already holds events. The imported
	// sequences must then continue from the store's head (head+1, head+2,
	// …), and each stream from the version it has in the store. The
	// default refuses a non-empty store with ErrNotEmpty.
	Force bool
	// Progress, when set, is called now and then with the number of
	// events read so far as done; total is 0, as the input's length is
	// not known.
	Progress Progress
}

// ImportResult says what an Import wrote.
type ImportResult struct {
	Events    int64 // events imported
	First     int64 // sequence of the first imported event, 0 when none
	Last      int64 // sequence of the last imported event, 0 when none
	Projected int64 // events applied to the projections, in the import or after it
}

// ImportError says which line of an import is wrong and why. Nothing of
// the import was written.
type ImportError struct {
	Line int // from 1
	Err  error
}

func (e *ImportError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the reason.
func (e *ImportError) Unwrap() error { return e.Err }

// maxImportLine is the longest line Import accepts: the largest payload,
// escaped, and the metadata around it.
const maxImportLine = 2*MaxPayloadBytes + 64<<10

// Import reads events in the export format (see AppendJSONL) from r and
// stores them with their sequences, ids, versions, times and metadata ids
// as they are, with their projection updates in the same transaction when
// the projections are up to date (else it catches them up after the
// import). It streams: memory stays bounded whatever the length of r,
// apart from one version counter per stream.
//
// Every line is checked before it is stored: a known type whose data
// decodes and is valid, a stream and occurred_at that agree with the data,
// a schema_version this build reads (absent means 1), a UUID event id,
// sequences 1, 2, 3… (continuing the store's, with
// Force), strings that are valid UTF-8 without NUL bytes, and each stream's
// versions 1, 2, 3… (continuing the store's, with Force).
//
// It reads and checks r without the write lock, so a slow or stalled
// input keeps no other writer waiting: it stages the events in a temporary
// table on a connection of its own and, into an empty store, builds their
// projections beside it (as Rebuild does); then, in one write transaction,
// it moves them into the log with one INSERT … SELECT and swaps the
// projections in (into a store that holds events, it applies them there).
// Other writers wait only for that transaction. The import is all or
// nothing: a wrong line (an *ImportError naming it), a duplicate id, a
// database error (on a full disk, one that says so) or the end of ctx
// writes nothing; so does an append by another writer while r is read,
// which fails the import with ErrNotEmpty (ErrStoreChanged with Force).
func (s *Store) Import(ctx context.Context, r io.Reader, opts *ImportOpts) (result ImportResult, err error) {
	if err := s.writable(); err != nil {
		return ImportResult{}, err
	}
	ctx, done := s.tel.op(ctx, "import", "import")
	defer func() { done(err, "events", result.Events, "projected", result.Projected) }()
	if opts == nil {
		opts = &ImportOpts{}
	}
	res, err := s.importStaged(ctx, r, opts)
	if err != nil {
		return ImportResult{}, s.importFailure(ctx, err)
	}
	if res.Events > 0 {
		s.grew.fire()
	}
	if !s.opts.NoProjections {
		caught, err := s.CatchUp(ctx)
		res.Projected += caught
		if err != nil {
			return res, fmt.Errorf("import: the events are stored, catching the projections up failed (run `peon-store rebuild`): %w", err)
		}
	}
	return res, nil
}

// exportLine is a line of the export format as Import reads it.
type exportLine struct {
	Sequence      *int64          `json:"sequence"`
	EventID       string          `json:"event_id"`
	Stream        string          `json:"stream"`
	Version       *int64          `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion *int            `json:"schema_version"`
	OccurredAt    *time.Time      `json:"occurred_at"`
	RecordedAt    *time.Time      `json:"recorded_at"`
	CommandID     *string         `json:"command_id"`
	CorrelationID *string         `json:"correlation_id"`
	CausationID   *string         `json:"causation_id"`
	Data          json.RawMessage `json:"data"`
}

// importValidator checks lines in order against what came before.
type importValidator struct {
	last     int64            // the last sequence seen (or the store's head)
	versions map[string]int64 // stream -> last version seen
	// version returns a stream's version in the store; nil when the store
	// is empty.
	version func(stream string) (int64, error)
	n       int     // events checked so far: the index of the next one
	gaps    *gapSet // the gaps the input declares, which it may leave
	// tombs are the tombstones read (they precede the events, and add
	// their gaps to gaps), pruned their streams; missing is how many
	// sequences the events skipped so far, tombLast the tombstones'
	// highest last sequence.
	tombs    []Tombstone
	pruned   map[string]bool
	missing  int64
	tombLast int64
}

// tombstoneLine is a tombstone line of the export format.
type tombstoneLine struct {
	Tombstone *struct {
		Stream        string     `json:"stream"`
		LastVersion   *int64     `json:"last_version"`
		FirstSequence *int64     `json:"first_sequence"`
		LastSequence  *int64     `json:"last_sequence"`
		Events        *int64     `json:"events"`
		Bytes         *int64     `json:"bytes"`
		PrunedAt      *time.Time `json:"pruned_at"`
	} `json:"tombstone"`
}

// isTombstoneLine reports whether b is a tombstone line rather than an
// event.
func isTombstoneLine(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t"), []byte(`{"tombstone":`))
}

// tombstone parses and checks a tombstone line: before every event, of a
// stream the store does not hold, once.
func (v *importValidator) tombstone(b []byte) error {
	var l tombstoneLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return fmt.Errorf("not a tombstone object: %w", err)
	}
	t := l.Tombstone
	switch {
	case t == nil || t.Stream == "":
		return errors.New(`the tombstone has no "stream"`)
	case t.LastVersion == nil || t.FirstSequence == nil || t.LastSequence == nil || t.Events == nil || t.Bytes == nil || t.PrunedAt == nil:
		return fmt.Errorf("the tombstone of %s lacks a field", clip.Quote(t.Stream))
	case v.n > 0:
		return fmt.Errorf("the tombstone of %s follows events; tombstones come first", clip.Quote(t.Stream))
	case v.pruned[t.Stream]:
		return fmt.Errorf("a second tombstone of %s", clip.Quote(t.Stream))
	case *t.Events < 1 || *t.LastVersion < *t.Events || *t.FirstSequence < 1 || *t.LastSequence-*t.FirstSequence+1 < *t.Events || *t.Bytes < 0:
		return fmt.Errorf("the tombstone of %s counts %d events, last version %d, sequences %d to %d, %d bytes",
			clip.Quote(t.Stream), *t.Events, *t.LastVersion, *t.FirstSequence, *t.LastSequence, *t.Bytes)
	case *t.FirstSequence <= v.last:
		return fmt.Errorf("the tombstone of %s begins at sequence %d, not after the store's last sequence %d", clip.Quote(t.Stream), *t.FirstSequence, v.last)
	}
	if v.version != nil {
		if prev, err := v.version(t.Stream); err != nil {
			return fmt.Errorf("read version of %s: %w", clip.String(t.Stream), err)
		} else if prev != 0 {
			return fmt.Errorf("the store holds %s, which the tombstone says was pruned", clip.Quote(t.Stream))
		}
	}
	if v.pruned == nil {
		v.pruned = map[string]bool{}
	}
	v.pruned[t.Stream] = true
	v.gaps.add(gap{Stream: t.Stream, First: *t.FirstSequence - 1, Last: *t.LastSequence, LastVersion: *t.LastVersion,
		Events: *t.Events, Bytes: *t.Bytes})
	v.tombLast = max(v.tombLast, *t.LastSequence)
	v.tombs = append(v.tombs, Tombstone{Stream: t.Stream, LastVersion: *t.LastVersion, FirstSequence: *t.FirstSequence, LastSequence: *t.LastSequence,
		Events: *t.Events, Bytes: *t.Bytes, PrunedAt: t.PrunedAt.UTC()})
	return nil
}

// finish checks, at the end of the input, that the events skipped exactly
// as many sequences as the gap lines and tombstones declare removed, and
// that those after the last event are a tombstone's.
func (v *importValidator) finish() error {
	if n, first := v.gaps.missing(v.last, v.tombLast+1); n > 0 {
		return fmt.Errorf("%d sequences missing from %d, after the last event, that no tombstone declares", n, first)
	}
	missing := v.missing + max(0, v.tombLast-v.last)
	if removed := v.gaps.removedFrom(""); missing != removed {
		return fmt.Errorf("the gap records and tombstones declare %d events removed, but %d sequences are missing", removed, missing)
	}
	return nil
}

// line parses and checks one line and returns it as a record to insert.
func (v *importValidator) line(b []byte) (Recorded, error) {
	var l exportLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		if d := jsonDepth(b); d > MaxJSONDepth+2 { // the line, the data, its value
			return Recorded{}, &InvalidEventError{Index: v.n, Err: fmt.Errorf(
				"the line nests %d levels deep; a JSON value in an event may nest %d at most (MaxJSONDepth)", d, MaxJSONDepth)}
		}
		return Recorded{}, fmt.Errorf("not an event object: %w", err)
	}
	if dec.More() {
		return Recorded{}, errors.New("more than one JSON value on the line")
	}
	switch {
	case l.Sequence == nil:
		return Recorded{}, errors.New(`"sequence" is missing`)
	case l.Version == nil:
		return Recorded{}, errors.New(`"version" is missing`)
	case l.OccurredAt == nil:
		return Recorded{}, errors.New(`"occurred_at" is missing`)
	case l.RecordedAt == nil:
		return Recorded{}, errors.New(`"recorded_at" is missing`)
	case len(l.Data) == 0:
		return Recorded{}, errors.New(`"data" is missing`)
	case l.Type == "":
		return Recorded{}, errors.New(`"type" is missing`)
	case !orchestration.Known(l.Type):
		return Recorded{}, fmt.Errorf("unknown event type %s (written by a newer peon?)", clip.Quote(l.Type))
	case l.SchemaVersion != nil && *l.SchemaVersion != orchestration.SchemaVersion:
		return Recorded{}, fmt.Errorf("schema_version %d of %s: this build reads version %d (exported by a newer peon?)",
			*l.SchemaVersion, l.Type, orchestration.SchemaVersion)
	}
	id, err := uuid.Parse(l.EventID)
	if err != nil {
		return Recorded{}, fmt.Errorf("event_id %s is not a UUID", clip.Quote(l.EventID))
	}
	if seq := *l.Sequence; seq < 1 {
		return Recorded{}, fmt.Errorf("sequence %d is not positive", seq)
	} else if seq <= v.last {
		if len(v.versions) == 0 {
			return Recorded{}, fmt.Errorf("sequence %d is not after the store's last sequence %d", seq, v.last)
		}
		return Recorded{}, fmt.Errorf("sequence %d does not follow %d", seq, v.last)
	} else if missing, _ := v.gaps.missing(v.last, seq); missing > 0 {
		// The log has no holes (Verify checks it): an import continues it.
		return Recorded{}, fmt.Errorf("sequence %d leaves a gap after %d; sequences run 1, 2, 3… without holes but those a compaction line or a tombstone declares", seq, v.last)
	} else {
		v.missing += seq - v.last - 1
	}
	if v.pruned[l.Stream] {
		return Recorded{}, &StreamPrunedError{Stream: l.Stream}
	}
	e, err := orchestration.Decode(l.Type, l.Data)
	if err != nil {
		return Recorded{}, fmt.Errorf("data: %w", err)
	}
	e, payload, err := admit(e)
	if err != nil {
		return Recorded{}, &InvalidEventError{Index: v.n, Type: l.Type, Err: err}
	}
	if err := admitMeta(deref(l.CommandID), deref(l.CorrelationID), deref(l.CausationID)); err != nil {
		return Recorded{}, &InvalidEventError{Index: v.n, Type: l.Type, Err: err}
	}
	if e.StreamID() != l.Stream {
		return Recorded{}, fmt.Errorf("stream %s does not match the data, whose stream is %s", clip.Quote(l.Stream), clip.Quote(e.StreamID()))
	}
	if !e.OccurredAt().Equal(*l.OccurredAt) {
		return Recorded{}, fmt.Errorf("occurred_at %s differs from the data's at %s", l.OccurredAt.Format(time.RFC3339Nano), e.OccurredAt().Format(time.RFC3339Nano))
	}
	prev, seen := v.versions[l.Stream]
	if !seen && v.version != nil {
		if prev, err = v.version(l.Stream); err != nil {
			return Recorded{}, fmt.Errorf("read version of %s: %w", clip.String(l.Stream), err)
		}
	}
	if prev == prunedVersion {
		return Recorded{}, &StreamPrunedError{Stream: l.Stream}
	}
	if missing, _ := v.gaps.missingVersions(l.Stream, prev, *l.Version); *l.Version <= prev || missing > 0 {
		return Recorded{}, fmt.Errorf("version %d of %s does not follow %d", *l.Version, clip.String(l.Stream), prev)
	}
	v.last, v.versions[l.Stream] = *l.Sequence, *l.Version
	v.n++
	return Recorded{
		Sequence:      *l.Sequence,
		EventID:       id.String(),
		StreamID:      l.Stream,
		StreamVersion: *l.Version,
		Type:          l.Type,
		SchemaVersion: orchestration.SchemaVersion,
		Event:         e,
		OccurredAt:    e.OccurredAt(),
		RecordedAt:    l.RecordedAt.UTC(),
		CommandID:     deref(l.CommandID),
		CorrelationID: deref(l.CorrelationID),
		CausationID:   deref(l.CausationID),
		Payload:       payload,
	}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
