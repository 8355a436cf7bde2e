package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// Reader runs the typed queries of the read models. It is safe for
// concurrent use, and worth keeping: it remembers the text so far of the
// streaming messages it read (see streamed), so that the next read of a
// message reads only the deltas appended since.
type Reader struct {
	c *ent.Client
	// deltaQuery reads the deltas of one streaming message (see deltas),
	// moreQuery those after a version of its thread's stream, and
	// seenQuery whether the log holds an event at a sequence and version;
	// each written for the store's engine.
	deltaQuery, moreQuery, seenQuery string
	streamed                         streamed
}

// NewReader returns a Reader of the projection tables of store.
func NewReader(store *persistence.Store) *Reader {
	postgres := store.Target().Dialect == "postgres"
	q := func(deltas string) string {
		return `SELECT e.sequence, e.stream_version, e.payload ->> 'delta', e.occurred_at FROM events e, projection_messages m
		WHERE m.message_id = ? AND ` + deltas + ` ORDER BY e.stream_version`
	}
	r := &Reader{c: store.Client(),
		deltaQuery: q(projector.DeltasOf("events", "m", !postgres)),
		moreQuery:  q(projector.DeltasAfter("events", "m", "?", !postgres)),
		seenQuery:  `SELECT COUNT(*) FROM events WHERE sequence = ? AND stream_version = ?`,
	}
	if postgres {
		r.deltaQuery, r.moreQuery, r.seenQuery = sqlx.Dollar(r.deltaQuery), sqlx.Dollar(r.moreQuery), sqlx.Dollar(r.seenQuery)
	}
	return r
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
// its text so far, and the at, sequence and stream version of its last
// delta.
type pendingText struct {
	text         string
	updatedAt    time.Time
	lastSequence int64
	version      int64
}

// deltas returns what the deltas of each streaming message of msgs make
// of its row. They stay in the log: for each such message one query reads
// them from events, by the condition the view projection_messages_live
// and the projector's fold read them by (projector.DeltasOf), so the
// Reader, a SQL shell and a completion agree on them. Where the Reader
// read the message before, that query reads only the deltas after the
// last one it read then (see streamed).
func (r *Reader) deltas(ctx context.Context, c *ent.Client, msgs []*ent.Message) (map[string]pendingText, error) {
	var out map[string]pendingText
	for _, m := range msgs {
		if !m.Streaming {
			r.streamed.forget(m.ID)
			continue
		}
		p, err := r.readDeltas(ctx, c, m)
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

// readDeltas returns what the deltas of streaming message m make of its
// row: the text the Reader remembers of it, when it may build on it,
// followed by the deltas after it.
func (r *Reader) readDeltas(ctx context.Context, c *ent.Client, m *ent.Message) (pendingText, error) {
	p := pendingText{text: m.Text}
	query, args := r.deltaQuery, []any{m.ID}
	if known, ok := r.streamed.get(m); ok {
		// What this read's snapshot holds may end before the remembered
		// text does (another read, begun later, remembered it): build on
		// it only when the snapshot holds its last delta.
		n, err := sqlx.QueryInt64(ctx, c, r.seenQuery, known.lastSequence, known.version)
		if err != nil {
			return pendingText{}, err
		}
		if n == 1 {
			p = known
			query, args = r.moreQuery, []any{m.ID, known.version}
		}
	}
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return pendingText{}, err
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString(p.text)
	read := false
	for rows.Next() {
		var d sql.NullString
		if err := rows.Scan(&p.lastSequence, &p.version, &d, &p.updatedAt); err != nil {
			return pendingText{}, err
		}
		b.WriteString(d.String)
		read = true
	}
	if err := rows.Err(); err != nil {
		return pendingText{}, err
	}
	if read {
		p.text = b.String()
		r.streamed.put(m, p)
	}
	return p, nil
}

// Bounds of what a Reader remembers of streaming messages (see streamed).
const (
	maxStreamed      = 256      // messages
	maxStreamedBytes = 16 << 20 // bytes of their text
)

// streamed is the text so far of the streaming messages a Reader read,
// by message id, each with the stream version of its last delta, so that
// the next read of a message reads only the deltas after it: a UI that
// reads a thread while a reply streams into it costs, each time, the
// deltas appended since it last read instead of every delta so far.
//
// The log is append-only and a stream's events commit in version order
// (the append lock), so the deltas of a message up to a version never
// change once a read saw them, with two exceptions, which the entry's
// key rules out: a message that completes (its text is then in its row:
// the entry is dropped) and one pruned with its thread, whose row goes
// with it (a message of the same id added later has another
// added_sequence). Compaction folds only completed messages. A read whose
// snapshot does not hold the entry's last delta reads from the start.
//
// It holds at most maxStreamed messages and maxStreamedBytes of text; to
// put one more, it forgets others, any of them (a forgotten message is
// read from the start once more).
type streamed struct {
	mu    sync.Mutex
	m     map[string]streamedText
	bytes int
}

// streamedText is what a Reader remembers of one streaming message.
type streamedText struct {
	added int64 // the message's added_sequence
	base  int   // the length of its stored text, which p.text begins with
	p     pendingText
}

// get returns what is remembered of m, if it is of m as it is now.
func (s *streamed) get(m *ent.Message) (pendingText, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[m.ID]
	if !ok || e.added != m.AddedSequence || e.base != len(m.Text) || e.p.text[:e.base] != m.Text {
		return pendingText{}, false
	}
	return e.p, true
}

// put remembers p of m, unless what is remembered of m is further on.
func (s *streamed) put(m *ent.Message, p pendingText) {
	size := len(p.text)
	if size > maxStreamedBytes/4 {
		s.forget(m.ID) // one message would crowd out the rest
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[m.ID]; ok {
		if e.added == m.AddedSequence && e.p.version >= p.version {
			return
		}
		s.drop(m.ID, e)
	}
	for id, e := range s.m {
		if len(s.m) < maxStreamed && s.bytes+size <= maxStreamedBytes {
			break
		}
		s.drop(id, e)
	}
	if s.m == nil {
		s.m = map[string]streamedText{}
	}
	s.m[m.ID] = streamedText{added: m.AddedSequence, base: len(m.Text), p: p}
	s.bytes += size
}

// forget drops what is remembered of message id.
func (s *streamed) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok {
		s.drop(id, e)
	}
}

// drop removes entry e of id; s.mu is held.
func (s *streamed) drop(id string, e streamedText) {
	delete(s.m, id)
	s.bytes -= len(e.p.text)
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
