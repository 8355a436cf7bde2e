package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

func (a *app) demoCommand() *cobra.Command {
	var (
		o      demoOpts
		wl     workload.Options
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Write a realistic session into the store and show what the projections make of it",
		Long: `demo writes, through the store, what peon records while someone works with
coding agents: projects, threads, turns with user messages and assistant
replies streamed as many message.delta events, a failed turn, an interrupted
turn, checkpoints and a revert, and settings. Then it prints what the
projections show: a table of the threads and the transcript of one thread.

The same --seed writes the same ids and times. Without --seed, demo picks one
that the store has not used yet, so it can run again on the same store.
--json prints a report of what it wrote instead.

--agents N --hours H writes a long workload instead: N agents working at
once for H hours of simulated time (from 2026-11-02 08:00 UTC) on hundreds
of threads over several projects, replies streamed as deltas of 20 to 80
bytes, failed and interrupted turns, checkpoints and reverts, threads
archived and deleted, a project deleted, in batches of 1,000 events; then
it says what it wrote. --agents 8 --hours 25 writes over 200,000 events.`,
		Example: `  peon-store demo
  peon-store --db /tmp/demo.db demo --threads 20 --turns 10
  peon-store --db :memory: demo --seed 7
  peon-store --db /tmp/long.db demo --agents 8 --hours 25`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Threads < 1 || o.Turns < 1 {
				return usagef("--threads and --turns must be at least 1")
			}
			long := cmd.Flags().Changed("agents") || cmd.Flags().Changed("hours")
			if long && (cmd.Flags().Changed("threads") || cmd.Flags().Changed("turns")) {
				return usagef("--agents and --hours write a workload of their own; leave out --threads and --turns")
			}
			if long && (wl.Agents < 1 || wl.Agents > 1000 || !(wl.Hours > 0 && wl.Hours <= 24*365)) {
				return usagef("--agents must be 1 to 1000 and --hours more than 0, at most 8760")
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, mayCreate)
			if err != nil {
				return err
			}
			defer s.Close()
			if !cmd.Flags().Changed("seed") {
				head, err := s.Head(ctx)
				if err != nil {
					return err
				}
				o.Seed = uint64(head) + 1
			}
			if long {
				wl.Seed = o.Seed
				return a.runWorkload(ctx, s, wl, asJSON)
			}
			res, err := writeDemo(ctx, s, o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, demoJSON{Seed: res.Seed, Events: res.Events, Appends: res.Appends, Projects: res.Projects,
					Threads: res.Threads, Turns: res.Turns, Deltas: res.Deltas, ThreadIDs: res.ThreadIDs, Store: res.DB})
			}
			return a.printDemo(ctx, s, res)
		},
	}
	cmd.Flags().IntVar(&o.Threads, "threads", 4, "how many threads to write")
	cmd.Flags().IntVar(&o.Turns, "turns", 5, "how many turns each thread has")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 0, "seed of the ids, times and texts (default: one this store has not used)")
	cmd.Flags().IntVar(&wl.Agents, "agents", 8, "write a long workload of this many agents working at once (with --hours)")
	cmd.Flags().Float64Var(&wl.Hours, "hours", 25, "write a long workload of this many hours of simulated time (with --agents)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// demoOpts size and seed a demo session.
type demoOpts struct {
	Seed    uint64
	Threads int
	Turns   int
}

// demoResult says what writeDemo wrote.
type demoResult struct {
	Seed                             uint64
	Events, Appends                  int
	Projects, Threads, Turns, Deltas int
	Showcase                         string   // the thread whose transcript the summary shows
	ThreadIDs                        []string // the threads written
	DB                               string
}

// demoWriter writes one demo session. Its clock and ids come from a
// generator seeded by the session's seed.
type demoWriter struct {
	ctx   context.Context
	store *persistence.Store
	rng   *rand.Rand
	now   time.Time
	seed  uint64
	head  int64 // the store's head before the session
	res   demoResult
}

// demoEpoch is where a demo session's clock starts, before the seed moves
// it by up to a month.
var demoEpoch = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// writeDemo writes a session of o.Threads threads of o.Turns turns each.
func writeDemo(ctx context.Context, s *persistence.Store, o demoOpts) (demoResult, error) {
	w := &demoWriter{ctx: ctx, store: s, seed: o.Seed,
		rng: rand.New(rand.NewPCG(o.Seed, 0x5eed_9e37_79b9_7f4a))}
	w.now = demoEpoch.Add(time.Duration(w.rng.IntN(30*24)) * time.Hour)
	w.res.Seed, w.res.DB = o.Seed, s.Target().Display
	var err error
	if w.head, err = s.Head(ctx); err != nil {
		return w.res, err
	}
	err = w.session(o)
	return w.res, err
}

// tick advances the clock by a random duration in [lo, hi) and returns it,
// to the millisecond.
func (w *demoWriter) tick(lo, hi time.Duration) time.Time {
	w.now = w.now.Add(lo + time.Duration(w.rng.Int64N(int64(hi-lo)))).Truncate(time.Millisecond)
	return w.now
}

// id returns prefix-<12 hex digits>.
func (w *demoWriter) id(prefix string) string {
	return fmt.Sprintf("%s-%012x", prefix, w.rng.Uint64()>>16)
}

// gitRef returns a commit id.
func (w *demoWriter) gitRef() string {
	return fmt.Sprintf("%016x%016x%08x", w.rng.Uint64(), w.rng.Uint64(), w.rng.Uint32())
}

// append stores one command's events. create names streams that must not
// exist yet.
func (w *demoWriter) append(correlation string, create []string, events ...orchestration.Event) error {
	w.res.Appends++
	opts := &persistence.AppendOpts{
		CommandID:     fmt.Sprintf("demo-%d-%d", w.seed, w.res.Appends),
		CorrelationID: correlation,
	}
	if len(create) > 0 {
		opts.ExpectedVersions = make(map[string]int64, len(create))
		for _, st := range create {
			opts.ExpectedVersions[st] = persistence.NoStream
		}
	}
	recs, err := w.store.Append(w.ctx, opts, events...)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if recs[0].Sequence <= w.head {
		// The command was stored before: this seed ran on this store.
		return fmt.Errorf("demo: the store already holds the session of seed %d; pass another --seed, or none", w.seed)
	}
	w.res.Events += len(events)
	return nil
}

type demoTurn int

const (
	turnCompleted demoTurn = iota
	turnFailed
	turnInterrupted
)

func (w *demoWriter) session(o demoOpts) error {
	if err := w.settings(); err != nil {
		return err
	}
	nProjects := min(len(demoProjects), o.Threads)
	projects := make([]string, nProjects)
	for i := range nProjects {
		p := demoProjects[i]
		projects[i] = w.id("prj")
		if err := w.append("", []string{orchestration.ProjectStream(projects[i])}, orchestration.ProjectCreated{
			ProjectID: projects[i], Name: p.name, WorkspaceRoot: p.root, At: w.tick(time.Second, 20*time.Second)}); err != nil {
			return err
		}
		w.res.Projects++
	}
	if nProjects > 1 {
		if err := w.append("", nil, orchestration.ProjectRenamed{ProjectID: projects[1], Name: "billing-service",
			At: w.tick(time.Second, 10*time.Second)}); err != nil {
			return err
		}
	}
	for t := range o.Threads {
		topic := demoTopics[(t+int(w.seed))%len(demoTopics)]
		id, err := w.thread(t, projects[t%nProjects], topic, o.Turns)
		if err != nil {
			return err
		}
		if t == 0 {
			w.res.Showcase = id
		}
		w.res.ThreadIDs = append(w.res.ThreadIDs, id)
		switch t {
		case 1:
			err = w.append("", nil, orchestration.ThreadRenamed{ThreadID: id, Title: topic.title + " (done)", At: w.tick(time.Second, 30*time.Second)})
		case 2:
			err = w.append("", nil, orchestration.ThreadArchived{ThreadID: id, At: w.tick(time.Minute, 5*time.Minute)})
		}
		if err != nil {
			return err
		}
	}
	return w.append("", nil, orchestration.SettingChanged{Key: "ui.theme", Value: json.RawMessage(`"system"`),
		At: w.tick(time.Second, time.Minute)})
}

func (w *demoWriter) settings() error {
	for _, kv := range [][2]string{
		{"ui.theme", `"dark"`},
		{"agent.default_model", `"gpt-5-codex"`},
		{"agent.approval_policy", `{"mode":"on-request","sandbox":"workspace-write"}`},
	} {
		if err := w.append("", nil, orchestration.SettingChanged{Key: kv[0], Value: json.RawMessage(kv[1]),
			At: w.tick(time.Second, 5*time.Second)}); err != nil {
			return err
		}
	}
	return nil
}

// thread writes thread number t with n turns. The first thread of a session
// shows everything: a first turn that fails (the provider is overloaded) and
// is sent again, a revert to the checkpoint before the last good turn, and
// an interrupted last turn.
func (w *demoWriter) thread(t int, projectID string, topic demoTopic, n int) (string, error) {
	id := w.id("thr")
	model := demoModels[w.rng.IntN(len(demoModels))]
	if err := w.append("", []string{orchestration.ThreadStream(id)}, orchestration.ThreadCreated{
		ThreadID: id, ProjectID: projectID, Title: topic.title, Model: model, At: w.tick(time.Minute, 10*time.Minute)}); err != nil {
		return "", err
	}
	w.res.Threads++
	showcase := t == 0
	var refs []string // checkpoint ref of each turn, "" when it has none
	for k := 1; k <= n; k++ {
		kind, p := turnCompleted, k-1
		if showcase && n >= 3 {
			if k == 1 {
				kind = turnFailed
			} else {
				p-- // the failed prompt is sent again
			}
		}
		if showcase && k == n && n >= 2 {
			kind = turnInterrupted
		}
		if showcase && k == n && n >= 4 {
			// Back to the checkpoint before turn n-1, which is undone.
			if err := w.append("", nil, orchestration.CheckpointReverted{ThreadID: id, GitRef: refs[n-3],
				At: w.tick(10*time.Second, 2*time.Minute)}); err != nil {
				return "", err
			}
		}
		prompt := topic.prompts[p%len(topic.prompts)]
		if p >= len(topic.prompts) {
			prompt = demoFollowUps[w.rng.IntN(len(demoFollowUps))]
		}
		ref, err := w.turn(id, topic, k, p, prompt, kind)
		if err != nil {
			return "", err
		}
		refs = append(refs, ref)
	}
	return id, nil
}

// turn writes one turn: the user's prompt, the assistant's streamed reply
// and its end. It returns the checkpoint ref taken after it, if any.
func (w *demoWriter) turn(threadID string, topic demoTopic, ordinal, step int, prompt string, kind demoTurn) (string, error) {
	turnID, userMsg, reply := w.id("trn"), w.id("msg"), w.id("msg")
	w.res.Turns++
	if err := w.append(turnID, nil,
		orchestration.TurnStarted{ThreadID: threadID, TurnID: turnID, At: w.tick(20*time.Second, 3*time.Minute)},
		orchestration.MessageAdded{ThreadID: threadID, TurnID: turnID, MessageID: userMsg, Role: orchestration.RoleUser,
			Text: prompt, At: w.now},
	); err != nil {
		return "", err
	}
	if kind == turnFailed {
		return "", w.append(turnID, nil, orchestration.TurnFailed{ThreadID: threadID, TurnID: turnID,
			Error: "provider error: 529 overloaded_error: the model is overloaded, try again in a minute",
			At:    w.tick(2*time.Second, 20*time.Second)})
	}
	if err := w.append(turnID, nil, orchestration.MessageAdded{ThreadID: threadID, TurnID: turnID, MessageID: reply,
		Role: orchestration.RoleAssistant, Streaming: true, At: w.tick(300*time.Millisecond, 2*time.Second)}); err != nil {
		return "", err
	}
	chunks := w.chunks(w.reply(topic, step))
	if kind == turnInterrupted {
		chunks = chunks[:max(1, len(chunks)/3)]
	}
	for _, c := range chunks {
		if err := w.append(turnID, nil, orchestration.MessageDelta{ThreadID: threadID, TurnID: turnID, MessageID: reply,
			Delta: c, At: w.tick(15*time.Millisecond, 150*time.Millisecond)}); err != nil {
			return "", err
		}
		w.res.Deltas++
	}
	done := orchestration.MessageCompleted{ThreadID: threadID, TurnID: turnID, MessageID: reply, At: w.tick(10*time.Millisecond, 50*time.Millisecond)}
	if kind == turnInterrupted {
		return "", w.append(turnID, nil, done,
			orchestration.TurnInterrupted{ThreadID: threadID, TurnID: turnID, At: w.now})
	}
	ref := w.gitRef()
	return ref, w.append(turnID, nil, done,
		orchestration.TurnCompleted{ThreadID: threadID, TurnID: turnID, At: w.now},
		orchestration.CheckpointCreated{ThreadID: threadID, TurnID: turnID, GitRef: ref,
			Message: fmt.Sprintf("peon: after turn %d: %s", ordinal, shorten(prompt, 48)), At: w.tick(100*time.Millisecond, time.Second)},
	)
}

// reply composes the reply to the prompt of step (from 0): an opening to
// the first, one or two sentences on the topic, sometimes a remark of any
// topic.
func (w *demoWriter) reply(topic demoTopic, step int) string {
	var parts []string
	if step == 0 {
		parts = append(parts, demoOpenings[w.rng.IntN(len(demoOpenings))])
	}
	first := step % len(topic.replies)
	parts = append(parts, topic.replies[first])
	if w.rng.IntN(2) == 0 {
		parts = append(parts, topic.replies[(first+1)%len(topic.replies)])
	}
	if w.rng.IntN(3) == 0 {
		parts = append(parts, demoSentences[w.rng.IntN(len(demoSentences))])
	}
	return strings.Join(parts, " ")
}

// chunks splits text the way providers stream it: one to three words at a
// time, with their spaces.
func (w *demoWriter) chunks(text string) []string {
	words := strings.SplitAfter(text, " ")
	var out []string
	for len(words) > 0 {
		k := min(len(words), 1+w.rng.IntN(3))
		out = append(out, strings.Join(words[:k], ""))
		words = words[k:]
	}
	return out
}

// shorten cuts s to at most n runes, with an ellipsis when it cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// printDemo prints what the projections show after a demo.
func (a *app) printDemo(ctx context.Context, s *persistence.Store, res demoResult) error {
	out := a.stdout
	fmt.Fprintf(out, "Wrote %d events in %d appends to %s (seed %d): %d projects, %d threads, %d turns, %d streamed deltas.\n\n",
		res.Events, res.Appends, res.DB, res.Seed, res.Projects, res.Threads, res.Turns, res.Deltas)
	r := projection.NewReader(s)
	all, err := r.Threads(ctx, &projection.ThreadFilter{IncludeArchived: true, IncludeDeleted: true})
	if err != nil {
		return err
	}
	threads := slices.DeleteFunc(all, func(t projection.Thread) bool { return !slices.Contains(res.ThreadIDs, t.ID) })
	names, err := projectNames(ctx, r)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "The session's threads, as the projections show them:")
	fmt.Fprintln(out)
	writeThreads(out, threads, names, true)
	fmt.Fprintln(out)
	detail, err := r.Thread(ctx, res.Showcase)
	if err != nil {
		return err
	}
	writeTranscript(out, detail, names[detail.ProjectID], a.wrapWidth())
	settings, err := r.Settings(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Settings:")
	for _, st := range settings {
		fmt.Fprintf(out, "  %s = %s\n", st.Key, st.Value)
	}
	fmt.Fprintln(out)
	db := ""
	if a.db != "" {
		db = " --db " + a.db
	}
	fmt.Fprintf(out, "Look further:\n  peon-store%s threads --all\n  peon-store%s thread %s\n  peon-store%s events --stream thread:%s\n  peon-store%s verify\n",
		db, db, res.Showcase, db, res.Showcase, db)
	return nil
}
