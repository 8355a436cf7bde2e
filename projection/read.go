package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/ent/checkpoint"
	"github.com/peonhq/peon/ent/message"
	"github.com/peonhq/peon/ent/project"
	"github.com/peonhq/peon/ent/setting"
	"github.com/peonhq/peon/ent/thread"
	"github.com/peonhq/peon/ent/turn"
	"github.com/peonhq/peon/internal/projector"
	"github.com/peonhq/peon/internal/sqlx"
	"github.com/peonhq/peon/persistence"
)

// ErrNotFound is returned for a row that does not exist.
var ErrNotFound = errors.New("not found")

// Project is a row of projection_projects.
type Project struct {
	ID            string     `json:"project_id"`
	Name          string     `json:"name"`
	WorkspaceRoot string     `json:"workspace_root"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeletedAt     *time.Time `json:"deleted_at,omitempty"`
	LastSequence  int64      `json:"last_sequence"`
}

// Thread is a row of projection_threads.
type Thread struct {
	ID           string     `json:"thread_id"`
	ProjectID    string     `json:"project_id"`
	Title        string     `json:"title"`
	Model        string     `json:"model"`
	Status       string     `json:"status"` // idle or running
	TurnCount    int        `json:"turn_count"`
	MessageCount int        `json:"message_count"`
	LatestTurnID string     `json:"latest_turn_id,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ArchivedAt   *time.Time `json:"archived_at,omitempty"`
	DeletedAt    *time.Time `json:"deleted_at,omitempty"`
	LastSequence int64      `json:"last_sequence"`
}

// Turn is a row of projection_turns with its messages in order.
type Turn struct {
	ID            string     `json:"turn_id"`
	ThreadID      string     `json:"thread_id"`
	Ordinal       int        `json:"ordinal"`
	Status        string     `json:"status"` // running, completed, failed, interrupted or reverted
	Error         string     `json:"error,omitempty"`
	CheckpointRef string     `json:"checkpoint_ref,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	LastSequence  int64      `json:"last_sequence"`
	Messages      []Message  `json:"messages"`
}

// Message is a row of projection_messages; a streaming one as the view
// projection_messages_live shows it, with its text so far and the at and
// sequence of its last delta.
type Message struct {
	ID           string    `json:"message_id"`
	ThreadID     string    `json:"thread_id"`
	TurnID       string    `json:"turn_id"`
	Role         string    `json:"role"`
	Text         string    `json:"text"`
	Streaming    bool      `json:"streaming"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastSequence int64     `json:"last_sequence"`
}

// Checkpoint is a row of checkpoints.
type Checkpoint struct {
	ThreadID     string     `json:"thread_id"`
	TurnID       string     `json:"turn_id"`
	GitRef       string     `json:"git_ref"`
	Message      string     `json:"message"`
	CreatedAt    time.Time  `json:"created_at"`
	RevertedAt   *time.Time `json:"reverted_at,omitempty"`
	LastSequence int64      `json:"last_sequence"`
}

// Setting is a row of settings.
type Setting struct {
	Key          string          `json:"key"`
	Value        json.RawMessage `json:"value"`
	UpdatedAt    time.Time       `json:"updated_at"`
	LastSequence int64           `json:"last_sequence"`
}

// ThreadDetail is a thread with its turns (in order, each with its
// messages in order) and its checkpoints.
type ThreadDetail struct {
	Thread
	Turns       []Turn       `json:"turns"`
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// Reader runs the typed queries of the read models.
type Reader struct {
	c *ent.Client
	// deltaQuery reads the deltas of one streaming message (see deltas),
	// written for the store's engine.
	deltaQuery string
}

// NewReader returns a Reader of the projection tables of store.
func NewReader(store *persistence.Store) *Reader {
	postgres := store.Target().Dialect == "postgres"
	q := `SELECT e.sequence, e.payload ->> 'delta', e.occurred_at FROM events e, projection_messages m
		WHERE m.message_id = ? AND ` + projector.DeltasOf("events", "m", !postgres) + ` ORDER BY e.stream_version`
	if postgres {
		q = sqlx.Dollar(q)
	}
	return &Reader{c: store.Client(), deltaQuery: q}
}

// ProjectFilter selects projects. A nil *ProjectFilter lists the projects
// that are not deleted.
type ProjectFilter struct {
	IncludeDeleted bool
}

// Projects lists projects by creation time.
func (r *Reader) Projects(ctx context.Context, f *ProjectFilter) ([]Project, error) {
	q := r.c.Project.Query().Order(ent.Asc(project.FieldCreatedAt), ent.Asc(project.FieldID))
	if f == nil || !f.IncludeDeleted {
		q = q.Where(project.DeletedAtIsNil())
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	out := make([]Project, len(rows))
	for i, p := range rows {
		out[i] = Project{ID: p.ID, Name: p.Name, WorkspaceRoot: p.WorkspaceRoot, CreatedAt: utc(p.CreatedAt),
			UpdatedAt: utc(p.UpdatedAt), DeletedAt: utcp(p.DeletedAt), LastSequence: p.LastSequence}
	}
	return out, nil
}

// ThreadFilter selects threads. A nil *ThreadFilter lists every thread
// that is neither archived nor deleted.
type ThreadFilter struct {
	ProjectID       string // "" for every project
	IncludeArchived bool
	IncludeDeleted  bool
}

// Threads lists threads by creation time.
func (r *Reader) Threads(ctx context.Context, f *ThreadFilter) ([]Thread, error) {
	if f == nil {
		f = &ThreadFilter{}
	}
	q := r.c.Thread.Query().Order(ent.Asc(thread.FieldCreatedAt), ent.Asc(thread.FieldID))
	if f.ProjectID != "" {
		q = q.Where(thread.ProjectID(f.ProjectID))
	}
	if !f.IncludeArchived {
		q = q.Where(thread.ArchivedAtIsNil())
	}
	if !f.IncludeDeleted {
		q = q.Where(thread.DeletedAtIsNil())
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	out := make([]Thread, len(rows))
	for i, t := range rows {
		out[i] = threadFrom(t)
	}
	return out, nil
}

func threadFrom(t *ent.Thread) Thread {
	return Thread{ID: t.ID, ProjectID: t.ProjectID, Title: t.Title, Model: t.Model, Status: string(t.Status),
		TurnCount: t.TurnCount, MessageCount: t.MessageCount, LatestTurnID: deref(t.LatestTurnID),
		CreatedAt: utc(t.CreatedAt), UpdatedAt: utc(t.UpdatedAt), ArchivedAt: utcp(t.ArchivedAt),
		DeletedAt: utcp(t.DeletedAt), LastSequence: t.LastSequence}
}

// Thread returns one thread with its turns, messages and checkpoints, all
// as of one moment (a read-only transaction, repeatable read). A message
// that is streaming has its text so far: its stored text followed by the
// text of its deltas in the log, as the view projection_messages_live
// shows it. It returns an error that wraps ErrNotFound when there is no
// such thread.
func (r *Reader) Thread(ctx context.Context, id string) (ThreadDetail, error) {
	tx, err := r.c.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return ThreadDetail{}, fmt.Errorf("thread %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return r.threadDetail(ctx, tx.Client(), id)
}

func (r *Reader) threadDetail(ctx context.Context, c *ent.Client, id string) (ThreadDetail, error) {
	t, err := c.Thread.Get(ctx, id)
	if ent.IsNotFound(err) {
		return ThreadDetail{}, fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return ThreadDetail{}, fmt.Errorf("thread %s: %w", id, err)
	}
	d := ThreadDetail{Thread: threadFrom(t), Turns: []Turn{}}
	turns, err := c.Turn.Query().Where(turn.ThreadID(id)).Order(ent.Asc(turn.FieldOrdinal)).All(ctx)
	if err != nil {
		return ThreadDetail{}, fmt.Errorf("thread %s: turns: %w", id, err)
	}
	msgs, err := c.Message.Query().Where(message.ThreadID(id)).Order(ent.Asc(message.FieldAddedSequence)).All(ctx)
	if err != nil {
		return ThreadDetail{}, fmt.Errorf("thread %s: messages: %w", id, err)
	}
	pending, err := r.deltas(ctx, c, msgs)
	if err != nil {
		return ThreadDetail{}, fmt.Errorf("thread %s: streamed deltas: %w", id, err)
	}
	byTurn := map[string][]Message{}
	for _, m := range msgs {
		msg := Message{ID: m.ID, ThreadID: m.ThreadID, TurnID: m.TurnID, Role: string(m.Role), Text: m.Text,
			Streaming: m.Streaming, CreatedAt: utc(m.CreatedAt), UpdatedAt: utc(m.UpdatedAt), LastSequence: m.LastSequence}
		if p, ok := pending[m.ID]; ok {
			msg.Text = p.text
			msg.UpdatedAt, msg.LastSequence = utc(p.updatedAt), p.lastSequence
		}
		byTurn[m.TurnID] = append(byTurn[m.TurnID], msg)
	}
	for _, u := range turns {
		ms := byTurn[u.ID]
		if ms == nil {
			ms = []Message{}
		}
		d.Turns = append(d.Turns, Turn{ID: u.ID, ThreadID: u.ThreadID, Ordinal: u.Ordinal, Status: string(u.Status),
			Error: deref(u.Error), CheckpointRef: deref(u.CheckpointRef), StartedAt: utc(u.StartedAt),
			EndedAt: utcp(u.EndedAt), LastSequence: u.LastSequence, Messages: ms})
	}
	if d.Checkpoints, err = checkpoints(ctx, c, id); err != nil {
		return ThreadDetail{}, err
	}
	return d, nil
}

// pendingText is what the deltas of a streaming message make of its row:
// its text so far, and the at and sequence of its last delta.
type pendingText struct {
	text         string
	updatedAt    time.Time
	lastSequence int64
}

// deltas returns what the deltas of each streaming message of msgs make
// of its row. They stay in the log: for each such message one query reads
// them from events, by the condition the view projection_messages_live
// and the projector's fold read them by (projector.DeltasOf), so the
// Reader, a SQL shell and a completion agree on them.
func (r *Reader) deltas(ctx context.Context, c *ent.Client, msgs []*ent.Message) (map[string]pendingText, error) {
	var out map[string]pendingText
	for _, m := range msgs {
		if !m.Streaming {
			continue
		}
		p, err := readDeltas(ctx, c, r.deltaQuery, m)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", m.ID, err)
		}
		if p.lastSequence == 0 {
			continue // no deltas yet
		}
		if out == nil {
			out = map[string]pendingText{}
		}
		out[m.ID] = p
	}
	return out, nil
}

// readDeltas reads the deltas of streaming message m with q.
func readDeltas(ctx context.Context, c *ent.Client, q string, m *ent.Message) (pendingText, error) {
	rows, err := c.QueryContext(ctx, q, m.ID)
	if err != nil {
		return pendingText{}, err
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString(m.Text)
	var p pendingText
	for rows.Next() {
		var d sql.NullString
		if err := rows.Scan(&p.lastSequence, &d, &p.updatedAt); err != nil {
			return pendingText{}, err
		}
		b.WriteString(d.String)
	}
	if err := rows.Err(); err != nil {
		return pendingText{}, err
	}
	p.text = b.String()
	return p, nil
}

// Checkpoints lists a thread's checkpoints by creation time.
func (r *Reader) Checkpoints(ctx context.Context, threadID string) ([]Checkpoint, error) {
	return checkpoints(ctx, r.c, threadID)
}

func checkpoints(ctx context.Context, c *ent.Client, threadID string) ([]Checkpoint, error) {
	rows, err := c.Checkpoint.Query().Where(checkpoint.ThreadID(threadID)).
		Order(ent.Asc(checkpoint.FieldCreatedAt), ent.Asc(checkpoint.FieldLastSequence)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoints of %s: %w", threadID, err)
	}
	out := make([]Checkpoint, len(rows))
	for i, c := range rows {
		out[i] = Checkpoint{ThreadID: c.ThreadID, TurnID: c.TurnID, GitRef: c.GitRef, Message: c.Message,
			CreatedAt: utc(c.CreatedAt), RevertedAt: utcp(c.RevertedAt), LastSequence: c.LastSequence}
	}
	return out, nil
}

// Settings lists every setting by key.
func (r *Reader) Settings(ctx context.Context) ([]Setting, error) {
	rows, err := r.c.Setting.Query().Order(ent.Asc(setting.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	out := make([]Setting, len(rows))
	for i, s := range rows {
		out[i] = Setting{Key: s.ID, Value: json.RawMessage(s.Value), UpdatedAt: utc(s.UpdatedAt), LastSequence: s.LastSequence}
	}
	return out, nil
}

func utc(t time.Time) time.Time { return t.UTC() }

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
