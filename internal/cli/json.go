package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/peonhq/peon/persistence"
)

// The reports that --json prints: one JSON object on one line of stdout,
// its fields in snake_case. docs/CLI.md documents every field; a test
// holds the two in step.

// verifyJSON is the report of verify --json.
type verifyJSON struct {
	OK       bool          `json:"ok"`
	Events   int64         `json:"events"`
	Pruned   int64         `json:"pruned"`
	Streams  int64         `json:"streams"`
	Problems []problemJSON `json:"problems"`
}

// problemJSON is one problem verify found; Text is the line verify prints.
type problemJSON struct {
	Kind     string `json:"kind"`
	Table    string `json:"table"`
	Key      string `json:"key"`
	Column   string `json:"column"`
	Stored   string `json:"stored"`
	Expected string `json:"expected"`
	Detail   string `json:"detail"`
	Text     string `json:"text"`
}

func verifyReport(r *persistence.VerifyReport) verifyJSON {
	v := verifyJSON{OK: r.OK(), Events: r.Events, Pruned: r.Pruned, Streams: r.Streams, Problems: make([]problemJSON, len(r.Problems))}
	for i, p := range r.Problems {
		v.Problems[i] = problemJSON{Kind: string(p.Kind), Table: p.Table, Key: p.Key, Column: p.Column,
			Stored: p.Stored, Expected: p.Expected, Detail: p.Detail, Text: oneLine(p.String())}
	}
	return v
}

// migrationJSON is one migration in the reports of migrate and migrate
// status. SQL is set by migrate --dry-run only.
type migrationJSON struct {
	Version     string  `json:"version"`
	Description string  `json:"description"`
	Applied     bool    `json:"applied"`
	ExecutedAt  *string `json:"executed_at"` // RFC 3339, null when pending or unknown
	SQL         string  `json:"sql,omitempty"`
}

func migrationReport(m persistence.MigrationStatus) migrationJSON {
	j := migrationJSON{Version: m.Version, Description: m.Description, Applied: m.Applied}
	if !m.ExecutedAt.IsZero() {
		at := m.ExecutedAt.UTC().Format(time.RFC3339)
		j.ExecutedAt = &at
	}
	return j
}

// migrateJSON is the report of migrate --json: the migrations it applied,
// or with --dry-run those it would apply, with their SQL.
type migrateJSON struct {
	DryRun     bool            `json:"dry_run"`
	Migrations []migrationJSON `json:"migrations"`
}

// statusJSON is the report of migrate status --json.
type statusJSON struct {
	Pending    int             `json:"pending"`
	Migrations []migrationJSON `json:"migrations"`
}

// rebuildJSON is the report of rebuild --json.
type rebuildJSON struct {
	Events           int64            `json:"events"`
	Undecodable      int64            `json:"undecodable"`
	FirstUndecodable *decodeErrorJSON `json:"first_undecodable"`
	Missing          int64            `json:"missing"`
	FirstMissing     int64            `json:"first_missing"`
	ElapsedSeconds   float64          `json:"elapsed_seconds"`
}

// decodeErrorJSON is a stored row that cannot be decoded.
type decodeErrorJSON struct {
	Sequence int64  `json:"sequence"`
	Type     string `json:"type"`
	Error    string `json:"error"`
}

func rebuildReport(r persistence.RebuildResult, elapsed time.Duration) rebuildJSON {
	j := rebuildJSON{Events: r.Events, Undecodable: r.Undecodable, Missing: r.Missing, FirstMissing: r.FirstMissing,
		ElapsedSeconds: elapsed.Seconds()}
	if de := r.FirstUndecodable; de != nil {
		j.FirstUndecodable = &decodeErrorJSON{Sequence: de.Sequence, Type: de.Type, Error: errString(de)}
	}
	return j
}

// importJSON is the report of import --json.
type importJSON struct {
	Events         int64   `json:"events"`
	FirstSequence  int64   `json:"first_sequence"`
	LastSequence   int64   `json:"last_sequence"`
	Projected      int64   `json:"projected"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

// exportJSON is the report of export -o FILE --json.
type exportJSON struct {
	Events         int64   `json:"events"`
	File           string  `json:"file"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

// demoJSON is the report of demo --json.
type demoJSON struct {
	Seed      uint64   `json:"seed"`
	Events    int      `json:"events"`
	Appends   int      `json:"appends"`
	Projects  int      `json:"projects"`
	Threads   int      `json:"threads"`
	Turns     int      `json:"turns"`
	Deltas    int      `json:"deltas"`
	ThreadIDs []string `json:"thread_ids"` // the first is the one demo shows
	Store     string   `json:"store"`
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
