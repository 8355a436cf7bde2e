// Package workload generates a long, realistic multi-agent workload into
// a store: several agents working at once for hours of simulated time,
// on hundreds of threads over several projects, with replies streamed as
// message.delta events of 20 to 80 bytes, failed and interrupted turns,
// checkpoints and reverts, and threads archived and deleted, projects
// deleted. peon-store demo --agents N --hours H runs it; benchmarks of
// compaction and retention use it as their fixture.
//
// The same Options give the same events (types, streams, data and times)
// on every store; only event ids and recorded times differ.
package workload

import (
	"container/heap"
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// Options size and seed a workload. The zero value of a field means its
// default.
type Options struct {
	// Agents is how many agents work at once; 0 means 8.
	Agents int
	// Hours is how long they work, in simulated time; 0 means 25.
	Hours float64
	// Seed seeds every id, text and time.
	Seed uint64
	// Start is when the simulated time starts; zero means Epoch.
	Start time.Time
	// Batch is how many events one Append carries at most; 0 means 1,000.
	Batch int
}

// Epoch is where the simulated time of a workload starts by default.
var Epoch = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// Report says what Generate wrote.
type Report struct {
	Seed    uint64
	Agents  int
	Hours   float64
	Events  int
	Appends int
	// Start and End are the times of the first and the last event.
	Start, End                               time.Time
	Projects, DeletedProjects                int
	Threads, ArchivedThreads, DeletedThreads int
	Turns, FailedTurns, InterruptedTurns     int
	Messages, Deltas, Checkpoints, Reverts   int
	// Elapsed is how long writing took.
	Elapsed time.Duration
}

// Generate writes the workload of o into s through Append, in batches of
// o.Batch events in the order of their times. It refuses a store that
// already holds the workload of the same seed (its command ids are
// stored).
func Generate(ctx context.Context, s *persistence.Store, o Options) (Report, error) {
	if o.Agents == 0 {
		o.Agents = 8
	}
	if o.Hours == 0 {
		o.Hours = 25
	}
	if o.Start.IsZero() {
		o.Start = Epoch
	}
	if o.Batch == 0 {
		o.Batch = 1000
	}
	switch {
	case o.Agents < 0 || o.Agents > 1000:
		return Report{}, fmt.Errorf("workload: %d agents; want 1 to 1000", o.Agents)
	case o.Hours < 0 || o.Hours > 24*365:
		return Report{}, fmt.Errorf("workload: %g hours; want more than 0, at most a year", o.Hours)
	case o.Batch < 0:
		return Report{}, fmt.Errorf("workload: batch of %d events; want 1 or more", o.Batch)
	}
	began := time.Now()
	head, err := s.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("workload: %w", err)
	}
	w := newWorld(o)
	rep := Report{Seed: o.Seed, Agents: o.Agents, Hours: o.Hours}
	batch := make([]orchestration.Event, 0, o.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rep.Appends++
		recs, err := s.Append(ctx, &persistence.AppendOpts{CommandID: fmt.Sprintf("workload-%d-%d", o.Seed, rep.Appends)}, batch...)
		if err != nil {
			return fmt.Errorf("workload: append %d: %w", rep.Appends, err)
		}
		if recs[0].Sequence <= head {
			return fmt.Errorf("workload: the store already holds the workload of seed %d; use another seed", o.Seed)
		}
		rep.Events += len(batch)
		batch = batch[:0]
		return nil
	}
	for e := range w.events() {
		if rep.Start.IsZero() {
			rep.Start = e.OccurredAt()
		}
		rep.End = e.OccurredAt()
		batch = append(batch, e)
		if len(batch) == o.Batch {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	w.count(&rep)
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// world is the simulation: its projects and agents.
type world struct {
	o        Options
	end      time.Time
	rng      *rand.Rand // the world's own: projects, settings
	projects []*project
	stats    Report // counted as the agents write
}

type project struct {
	id      string
	deleted bool
	// deleteAt is when it is deleted; zero for never.
	deleteAt time.Time
}

func newWorld(o Options) *world {
	w := &world{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}
	w.end = o.Start.Add(time.Duration(o.Hours * float64(time.Hour)))
	n := 4 + o.Agents/2
	for i := range n {
		p := &project{id: fmt.Sprintf("prj-%02d-%08x", i, w.rng.Uint32())}
		// One project in four is given up and deleted part-way through.
		if i%4 == 3 {
			p.deleteAt = o.Start.Add(time.Duration((0.3 + 0.5*w.rng.Float64()) * float64(w.end.Sub(o.Start))))
		}
		w.projects = append(w.projects, p)
	}
	return w
}

// events yields the world's events in the order of their times: the
// projects and settings first, then the agents' events merged.
func (w *world) events() iter.Seq[orchestration.Event] {
	return func(yield func(orchestration.Event) bool) {
		t := w.o.Start
		for i, p := range w.projects {
			w.stats.Projects++
			if !yield(orchestration.ProjectCreated{ProjectID: p.id, Name: projectNames[i%len(projectNames)] + suffix(i, len(projectNames)),
				WorkspaceRoot: "/home/dev/src/" + p.id, At: t}) {
				return
			}
			t = t.Add(time.Second)
		}
		for _, kv := range [][2]string{{"ui.theme", `"dark"`}, {"agent.default_model", `"gpt-5-codex"`}, {"agent.max_parallel", fmt.Sprint(w.o.Agents)}} {
			if !yield(orchestration.SettingChanged{Key: kv[0], Value: []byte(kv[1]), At: t}) {
				return
			}
			t = t.Add(time.Second)
		}
		// Each agent is a coroutine that yields its events in time order;
		// a heap of their next events merges them.
		q := &queue{}
		for a := range w.o.Agents {
			next, stop := iter.Pull(w.agent(a, t.Add(time.Duration(a)*7*time.Second)))
			defer stop()
			if e, ok := next(); ok {
				heap.Push(q, &cursor{e: e, next: next, a: a})
			}
		}
		for q.Len() > 0 {
			c := (*q)[0]
			// A project is deleted when its time comes, before later events.
			for _, p := range w.projects {
				if !p.deleted && !p.deleteAt.IsZero() && !c.e.OccurredAt().Before(p.deleteAt) {
					p.deleted = true
					w.stats.DeletedProjects++
					if !yield(orchestration.ProjectDeleted{ProjectID: p.id, At: p.deleteAt}) {
						return
					}
				}
			}
			if !yield(c.e) {
				return
			}
			if e, ok := c.next(); ok {
				c.e = e
				heap.Fix(q, 0)
			} else {
				heap.Pop(q)
			}
		}
	}
}

// count adds what the agents wrote to rep.
func (w *world) count(rep *Report) {
	s := w.stats
	rep.Projects, rep.DeletedProjects = s.Projects, s.DeletedProjects
	rep.Threads, rep.ArchivedThreads, rep.DeletedThreads = s.Threads, s.ArchivedThreads, s.DeletedThreads
	rep.Turns, rep.FailedTurns, rep.InterruptedTurns = s.Turns, s.FailedTurns, s.InterruptedTurns
	rep.Messages, rep.Deltas, rep.Checkpoints, rep.Reverts = s.Messages, s.Deltas, s.Checkpoints, s.Reverts
}

// cursor is an agent's next event.
type cursor struct {
	e    orchestration.Event
	next func() (orchestration.Event, bool)
	a    int // the agent, which breaks ties
}

// queue is a min-heap of cursors by the time of their next event.
type queue []*cursor

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	ti, tj := q[i].e.OccurredAt(), q[j].e.OccurredAt()
	return ti.Before(tj) || ti.Equal(tj) && q[i].a < q[j].a
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*cursor)) }
func (q *queue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// suffix numbers the names that repeat.
func suffix(i, n int) string {
	if i < n {
		return ""
	}
	return fmt.Sprintf("-%d", i/n+1)
}

// agent yields the events of agent a from start until the world ends:
// one thread after another, each a few turns, some of them archived or
// deleted when the agent is done with them.
func (w *world) agent(a int, start time.Time) iter.Seq[orchestration.Event] {
	return func(yield func(orchestration.Event) bool) {
		g := &agentGen{w: w, a: a, now: start, rng: rand.New(rand.NewPCG(w.o.Seed, uint64(a)+1)), yield: yield}
		for g.now.Before(w.end) {
			if !g.thread() {
				return
			}
			g.tick(20*time.Second, 5*time.Minute) // between threads
		}
	}
}

// agentGen writes one agent's events.
type agentGen struct {
	w     *world
	a     int
	now   time.Time
	rng   *rand.Rand
	yield func(orchestration.Event) bool
	n     int // ids taken
	j     int // threads written
}

func (g *agentGen) tick(lo, hi time.Duration) time.Time {
	g.now = g.now.Add(lo + time.Duration(g.rng.Int64N(int64(hi-lo)))).Truncate(time.Millisecond)
	return g.now
}

func (g *agentGen) id(prefix string) string {
	g.n++
	return fmt.Sprintf("%s-a%d-%06d-%04x", prefix, g.a, g.n, g.rng.Uint32()&0xffff)
}

func (g *agentGen) emit(e orchestration.Event) bool { return g.yield(e) }

// liveProject picks a project not deleted (by now); the first when all
// are.
func (g *agentGen) liveProject() *project {
	ps := g.w.projects
	for range 8 {
		p := ps[g.rng.IntN(len(ps))]
		if p.deleteAt.IsZero() || g.now.Before(p.deleteAt) {
			return p
		}
	}
	return ps[0]
}

// thread writes one thread: created, 1 to 8 turns, perhaps renamed, and
// at its end, by the agent's count of threads, archived (the 2nd, 7th,
// 12th…), deleted (the 3rd, 10th, 17th…) or archived then deleted (the
// 4th, 13th, 22nd…).
func (g *agentGen) thread() bool {
	p := g.liveProject()
	id := g.id("thr")
	g.w.stats.Threads++
	topic := topics[g.rng.IntN(len(topics))]
	if !g.emit(orchestration.ThreadCreated{ThreadID: id, ProjectID: p.id, Title: topic, Model: models[g.rng.IntN(len(models))], At: g.tick(time.Second, 10*time.Second)}) {
		return false
	}
	turns := 1 + g.rng.IntN(8)
	var refs []string
	for k := 0; k < turns && g.now.Before(g.w.end); k++ {
		ref, ok := g.turn(id)
		if !ok {
			return false
		}
		if ref != "" {
			refs = append(refs, ref)
		}
		// Now and then the user goes back to an earlier checkpoint.
		if len(refs) >= 2 && g.rng.IntN(12) == 0 {
			g.w.stats.Reverts++
			if !g.emit(orchestration.CheckpointReverted{ThreadID: id, GitRef: refs[g.rng.IntN(len(refs)-1)], At: g.tick(5*time.Second, time.Minute)}) {
				return false
			}
		}
	}
	if g.rng.IntN(5) == 0 {
		if !g.emit(orchestration.ThreadRenamed{ThreadID: id, Title: topic + " (done)", At: g.tick(time.Second, 30*time.Second)}) {
			return false
		}
	}
	j := g.j
	g.j++
	switch {
	case j%9 == 3: // archived, later deleted
		g.w.stats.ArchivedThreads++
		g.w.stats.DeletedThreads++
		return g.emit(orchestration.ThreadArchived{ThreadID: id, At: g.tick(time.Minute, 10*time.Minute)}) &&
			g.emit(orchestration.ThreadDeleted{ThreadID: id, At: g.tick(time.Minute, 10*time.Minute)})
	case j%5 == 1: // archived
		g.w.stats.ArchivedThreads++
		return g.emit(orchestration.ThreadArchived{ThreadID: id, At: g.tick(time.Minute, 10*time.Minute)})
	case j%7 == 2: // deleted
		g.w.stats.DeletedThreads++
		return g.emit(orchestration.ThreadDeleted{ThreadID: id, At: g.tick(30*time.Second, 5*time.Minute)})
	}
	return true
}

// turn writes one turn: the prompt, a streamed reply (sometimes after a
// tool call and its output), and its end: completed with a checkpoint
// (most), failed (one in twenty) or interrupted (one in fifteen). It
// returns the checkpoint's ref, if any.
func (g *agentGen) turn(thread string) (string, bool) {
	turn := g.id("trn")
	g.w.stats.Turns++
	msg := func(role orchestration.Role, text string, streaming bool) (string, bool) {
		id := g.id("msg")
		g.w.stats.Messages++
		return id, g.emit(orchestration.MessageAdded{ThreadID: thread, TurnID: turn, MessageID: id, Role: role, Text: text, Streaming: streaming, At: g.now})
	}
	if !g.emit(orchestration.TurnStarted{ThreadID: thread, TurnID: turn, At: g.tick(45*time.Second, 4*time.Minute)}) {
		return "", false
	}
	if _, ok := msg(orchestration.RoleUser, g.sentence(40, 300), false); !ok {
		return "", false
	}
	r := g.rng.IntN(60)
	if r < 3 { // failed before any reply
		g.w.stats.FailedTurns++
		return "", g.emit(orchestration.TurnFailed{ThreadID: thread, TurnID: turn, Error: failures[g.rng.IntN(len(failures))], At: g.tick(time.Second, 30*time.Second)})
	}
	if g.rng.IntN(3) == 0 { // a tool call and its output
		g.tick(time.Second, 10*time.Second)
		if _, ok := msg(orchestration.RoleTool, "$ "+commands[g.rng.IntN(len(commands))]+"\n"+g.sentence(80, 1500), false); !ok {
			return "", false
		}
	}
	g.tick(300*time.Millisecond, 3*time.Second)
	reply, ok := msg(orchestration.RoleAssistant, "", true)
	if !ok {
		return "", false
	}
	size := 800 + g.rng.IntN(5000) // bytes of the reply
	interrupted := r < 7
	if interrupted {
		size /= 3
	}
	for written := 0; written < size; {
		d := g.chunk()
		written += len(d)
		g.w.stats.Deltas++
		if !g.emit(orchestration.MessageDelta{ThreadID: thread, TurnID: turn, MessageID: reply, Delta: d, At: g.tick(20*time.Millisecond, 400*time.Millisecond)}) {
			return "", false
		}
	}
	if !g.emit(orchestration.MessageCompleted{ThreadID: thread, TurnID: turn, MessageID: reply, At: g.tick(10*time.Millisecond, 200*time.Millisecond)}) {
		return "", false
	}
	if interrupted {
		g.w.stats.InterruptedTurns++
		return "", g.emit(orchestration.TurnInterrupted{ThreadID: thread, TurnID: turn, At: g.now})
	}
	if !g.emit(orchestration.TurnCompleted{ThreadID: thread, TurnID: turn, At: g.now}) {
		return "", false
	}
	ref := fmt.Sprintf("%016x%016x%08x", g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint32())
	g.w.stats.Checkpoints++
	return ref, g.emit(orchestration.CheckpointCreated{ThreadID: thread, TurnID: turn, GitRef: ref,
		Message: "peon: after turn: " + topics[g.rng.IntN(len(topics))], At: g.tick(100*time.Millisecond, 2*time.Second)})
}

// chunk is one streamed delta: whole words, 20 to 80 bytes.
func (g *agentGen) chunk() string {
	want := 20 + g.rng.IntN(61)
	var b strings.Builder
	for {
		w := words[g.rng.IntN(len(words))]
		if b.Len()+len(w)+1 > want && b.Len() >= 20 {
			break
		}
		b.WriteString(w)
		b.WriteByte(' ')
		if b.Len() >= want {
			break
		}
	}
	s := b.String()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// sentence is text of lo to hi bytes.
func (g *agentGen) sentence(lo, hi int) string {
	want := lo + g.rng.IntN(hi-lo)
	var b strings.Builder
	for b.Len() < want {
		b.WriteString(words[g.rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}
