package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/peonhq/peon/internal/projector"
	"github.com/peonhq/peon/orchestration"
)

// Group commit.
//
// A commit is the dear part of an append: on SQLite the WAL write of
// COMMIT and BEGIN IMMEDIATE are about half of a single event's cost, on
// PostgreSQL the WAL flush is most of it, and the append lock is held
// through it. So this process's Appends queue in Go while a commit is in
// flight, and the first one waiting leads the next group: it takes what is
// queued then (up to maxGroupEvents events and maxGroupBytes of payload)
// and commits it in one transaction. There is no timer: an Append that
// finds no commit in flight begins at once, alone, on the same path as
// before group commit.
//
// Inside the group each Append is checked as it would be in a transaction
// of its own, after the earlier ones of the group: against the head, the
// versions of its streams and whether its command is stored as the
// earlier Appends left them, so its expected versions, its idempotency
// (also against an earlier Append of the same group) and its sequences
// are exactly what separate transactions give. The fast way (below) reads
// that once for the group and writes the group as one batch; the slow way
// runs each Append's own statements. There, an Append that fails after it
// wrote (an INSERT or a projection statement) is rolled back to the
// savepoint taken before its first write and fails alone; one that fails
// before it writes (a version conflict, a command stored before) needs no
// savepoint (on SQLite, where a savepoint costs no round trip, each Append
// of the slow way takes one all the same). Every caller is answered once
// the group's COMMIT has returned, that is once it is durable.
//
// A caller whose context ends while queued leaves the queue and gets an
// error that wraps its context's; once its group began, it gets the
// group's true outcome, as a lone Append does once through the gate (see
// workContext): the group's statements run under a context that ends only
// once every member's has (and appendGrace after that on PostgreSQL).

const (
	// maxGroupEvents bounds the events of one group. A group's fixed cost
	// (BEGIN, COMMIT and its flush, the lock) is shared by its members:
	// at 512 it is a fraction of a percent of each, and more would only
	// lengthen the wait of the last member, which is about the time of a
	// 512-event batch (a few milliseconds on either engine here).
	maxGroupEvents = 512
	// maxGroupBytes bounds the payload bytes of one group, for the same
	// reason: a few appends of large messages make a full group.
	maxGroupBytes = 1 << 20
	// contendedGroups is how many groups of one in a row end the
	// leaders' yield (see committer.contended): enough to span the
	// stragglers of a burst of 16 writers, few enough that a writer left
	// alone stops yielding after as many Appends.
	contendedGroups = 16
)

// groupReq is one Append waiting for its group, or in it.
type groupReq struct {
	ctx   context.Context
	b     *batch
	size  int
	lead  chan struct{} // closed when it is to lead the next group
	done  chan struct{} // closed when its outcome is set
	taken bool          // in a group, or leading one (under committer.mu)

	recs  []Recorded
	fresh bool
	err   error
}

// committer is the queue of a store's Appends.
type committer struct {
	mu    sync.Mutex
	busy  bool // a group is being committed
	queue []*groupReq
	// contended counts down from contendedGroups each group of one
	// member, and is set back to it by a group of more: while it is above
	// zero the store's Appends were concurrent lately, and a leader yields
	// before it takes its group (see commit).
	contended int

	// Test hooks (see grouphook_test.go).
	onGroup   func(members int)     // a group's transaction begins
	failAfter func([]Recorded) bool // an append's projection fails after its statements
}

// commit runs b in the next group and returns its outcome.
func (s *Store) commit(ctx context.Context, b *batch) (recs []Recorded, fresh bool, err error) {
	r := &groupReq{ctx: ctx, b: b, size: b.size(), lead: make(chan struct{}), done: make(chan struct{})}
	c := &s.group
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		r.taken = true
		contended := c.contended > 0
		c.mu.Unlock()
		if contended {
			// Appends were concurrent lately: yield once before taking
			// the group, so that those that are runnable (answered by
			// the last group and about to append again, or woken by
			// their own input) queue meanwhile and join it. On a loaded
			// machine the leader would otherwise go on alone on its
			// thread while they wait for a CPU, and the next one, and
			// the next: concurrent writers committed in groups of 2–3
			// instead of 8 (docs/BENCHMARKS.md). Not only after a shared
			// group: each burst of concurrent Appends ends with groups
			// of one, and the next burst's first leader must still
			// yield. A lone writer (all its groups have one member)
			// does not yield, and this is no timer: with nothing else
			// runnable it returns at once.
			runtime.Gosched()
		}
		s.lead(r)
		return r.recs, r.fresh, r.err
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case <-r.lead:
		// The Appends the last group answered are runnable now, and the
		// hand-off runs this goroutine before them: yield once, so that
		// those that append again at once join this group instead of
		// waiting for the next (without it, two writers hand the lead to
		// each other in groups of one while the rest wait for the CPU).
		runtime.Gosched()
		s.lead(r)
	case <-r.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !r.taken {
			for i, q := range c.queue {
				if q == r {
					c.queue = append(c.queue[:i], c.queue[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			return nil, false, notBegun(ctx, b)
		}
		c.mu.Unlock()
		select { // its group began: wait for the truth
		case <-r.lead:
			s.lead(r)
		case <-r.done:
		}
	}
	<-r.done
	return r.recs, r.fresh, r.err
}

// notBegun is the error of an Append whose context ended before its group
// ran it.
func notBegun(ctx context.Context, b *batch) error {
	return fmt.Errorf("append to %s: wait for the group commit: %w; nothing was written", b.stream(), context.Cause(ctx))
}

// size is the payload bytes of b.
func (b *batch) size() int {
	n := 0
	for _, p := range b.payload {
		n += len(p)
	}
	return n
}

// lead commits the group that r leads, hands the lead to the first Append
// queued after it, and answers the group.
func (s *Store) lead(r *groupReq) {
	c := &s.group
	c.mu.Lock()
	g := []*groupReq{r}
	events, size := len(r.b.events), r.size
	for len(c.queue) > 0 {
		q := c.queue[0]
		if events+len(q.b.events) > maxGroupEvents || size+q.size > maxGroupBytes {
			break
		}
		q.taken = true
		events, size = events+len(q.b.events), size+q.size
		g = append(g, q)
		c.queue = c.queue[1:]
	}
	onGroup := c.onGroup
	if len(g) > 1 {
		c.contended = contendedGroups
	} else if c.contended > 0 {
		c.contended--
	}
	c.mu.Unlock()

	live := g[:0:0]
	for _, m := range g {
		if m.ctx.Err() != nil {
			m.err = notBegun(m.ctx, m.b)
			continue
		}
		live = append(live, m)
	}
	if len(live) > 0 && onGroup != nil {
		onGroup(len(live))
	}
	switch {
	case len(live) == 1:
		m := live[0]
		if p, ok := s.d.(pipeliner); ok {
			m.recs, m.fresh, m.err = s.appendPipelined(m.ctx, p, m.b)
		} else {
			m.recs, m.fresh, m.err = s.appendOwnTx(m.ctx, m.b)
		}
	case len(live) > 1:
		if p, ok := s.d.(pipeliner); ok {
			s.groupPipelined(p, live)
		} else {
			s.groupTx(live)
		}
	}

	// Answer the group first, then hand the lead on: members that append
	// again at once queue behind the next leader and join its group.
	for _, m := range g {
		if m != r {
			close(m.done)
		}
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		next := c.queue[0]
		c.queue = c.queue[1:]
		next.taken = true
		close(next.lead)
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	close(r.done)
}

// groupContext returns the context a group's statements run under (see
// workContext): the first member's values, ending grace after every
// member's context has ended, or when stop is called.
func groupContext(g []*groupReq, grace time.Duration) (work context.Context, stop func()) {
	ctxs := make([]context.Context, len(g))
	for i, m := range g {
		ctxs[i] = m.ctx
	}
	return workContext(grace, ctxs...)
}

// allEnded reports whether the context of every member of g has ended.
func allEnded(g []*groupReq) bool {
	for _, m := range g {
		if m.ctx.Err() == nil {
			return false
		}
	}
	return true
}

// failGroup sets err, the error of a group that did not commit, as the
// outcome of every member that has none yet, and clears their records.
func failGroup(g []*groupReq, err error) {
	for _, m := range g {
		if m.err == nil {
			m.err = ctxErr(m.ctx, m.b.stream(), fmt.Errorf("append to %s: %w", m.b.stream(), err))
		}
		m.recs, m.fresh = nil, false
	}
}

// settleGroup learns the outcome of a group whose COMMIT was sent and
// failed with err (see settle): each member that wrote looks its first
// event up; one that found its command stored earlier in the group
// shares that member's outcome.
func (s *Store) settleGroup(g []*groupReq, err error) {
	stored := map[string]error{} // first event id of a member that wrote → its outcome
	for _, m := range g {
		if m.err != nil || !m.fresh {
			continue
		}
		first := m.recs[0].EventID
		recs, serr := s.settle(m.ctx, m.recs, err)
		if serr != nil && !errors.Is(serr, ErrUnknownOutcome) {
			serr = ctxErr(m.ctx, m.b.stream(), fmt.Errorf("append to %s: commit: %w", m.b.stream(), serr))
		}
		m.recs, m.err = recs, serr
		stored[first] = serr
	}
	for _, m := range g {
		if m.err != nil || m.fresh || len(m.recs) == 0 {
			continue
		}
		if serr, ok := stored[m.recs[0].EventID]; ok && serr != nil {
			m.recs, m.err = nil, serr
		}
	}
	for _, m := range g {
		if m.err != nil {
			m.recs, m.fresh = nil, false
		}
	}
}

// savepoint is the name of the savepoint a member of a group takes before
// its first write.
const (
	savepointSQL         = "SAVEPOINT peon_group"
	rollbackSavepointSQL = "ROLLBACK TO SAVEPOINT peon_group"
	releaseSavepointSQL  = "RELEASE SAVEPOINT peon_group"
)

// groupTx commits g, two or more Appends, in one transaction of
// database/sql, one statement at a time (SQLite). Each member runs
// appendIn inside a savepoint of its own.
func (s *Store) groupTx(g []*groupReq) {
	if s.serial {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	work, stop := groupContext(g, 0)
	defer stop()
	for _, m := range g {
		s.stmts.warm(work, s.db, s.d, m.b)
	}
	h, fast := s.readGroupHead(g)
	if fast && len(h.commands) == 0 && len(h.streams) <= 2*cachedShapes {
		// The common shapes of the fast way, prepared once (see warm).
		s.stmts.prepareAll(work, s.db, []string{h.query, s.stmts.insert(s.d, 1, false)})
	}
	tx, err := s.db.BeginTx(work, s.d.AppendTxOptions())
	if err != nil {
		failGroup(g, fmt.Errorf("begin: %w", err))
		return
	}
	for _, m := range g {
		if m.ctx.Err() != nil {
			m.err = notBegun(m.ctx, m.b)
		}
	}
	if fast {
		var dirty bool
		fast, dirty = s.groupFastTx(work, tx, h, g)
		if dirty { // roll the fast way's writes back, and begin again
			tx.Rollback()
			if tx, err = s.db.BeginTx(work, s.d.AppendTxOptions()); err != nil {
				failGroup(g, fmt.Errorf("begin: %w", err))
				return
			}
		}
	}
	for _, m := range g {
		if fast || m.err != nil {
			continue
		}
		if _, err := tx.ExecContext(work, savepointSQL); err != nil {
			tx.Rollback()
			failGroup(g, fmt.Errorf("savepoint: %w", err))
			return
		}
		m.recs, m.fresh, m.err = s.appendIn(work, tx, m.b)
		if m.err != nil {
			m.err = ctxErr(m.ctx, m.b.stream(), m.err)
			m.recs, m.fresh = nil, false
			if _, err := tx.ExecContext(work, rollbackSavepointSQL); err != nil {
				tx.Rollback()
				failGroup(g, fmt.Errorf("roll back to savepoint: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(work, releaseSavepointSQL); err != nil {
			tx.Rollback()
			failGroup(g, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if allEnded(g) {
		tx.Rollback()
		abandon(g)
		return
	}
	if err := tx.Commit(); err != nil {
		s.settleGroup(g, err)
	}
}

// abandon answers every member of g, a group rolled back before its
// COMMIT because every member's context ended, with its context's error.
func abandon(g []*groupReq) {
	for _, m := range g {
		if m.err == nil {
			m.err = fmt.Errorf("append to %s: %w; nothing was written", m.b.stream(), context.Cause(m.ctx))
		}
		m.recs, m.fresh = nil, false
	}
}

// groupPipelined commits g, two or more Appends, in one pipelined
// transaction (PostgreSQL; see appendPipelined). After BEGIN and the lock,
// each member's head read is one round trip, which also carries the
// statements of the member before it; a member that writes takes the
// savepoint first, and its INSERTs and projection statements wait for
// the next round trip. The last one goes with the COMMIT. A statement of
// a member that fails is reported in the round trip that carried it,
// while no other member's statements are pending: that member is rolled
// back to its savepoint and fails alone.
func (s *Store) groupPipelined(p pipeliner, g []*groupReq) {
	work, stop := groupContext(g, appendGrace)
	defer stop()
	conn, err := s.db.Conn(work)
	if err != nil {
		failGroup(g, fmt.Errorf("connect: %w", err))
		return
	}
	defer conn.Close()
	ended := false // the transaction is over: committed, or never begun
	defer func() {
		if !ended {
			endFailed(work, conn)
		}
	}()

	var locked bool
	stmts := beginAppend(p, &locked)
	for _, m := range g {
		if m.ctx.Err() != nil {
			m.err = notBegun(m.ctx, m.b)
		}
	}
	// The fast way's head read, and the look-up of the turns its
	// projection would make, go with BEGIN and the lock.
	h, fast := s.readGroupHead(g)
	var read []pipeStmt
	var turns *projector.TurnsRead
	if fast {
		read = []pipeStmt{{What: "read versions", Query: h.query, Args: h.args, Dest: h.dest()}}
		var evs []orchestration.Event
		for _, m := range g {
			evs = append(evs, m.b.events...)
		}
		var look []pipeStmt
		turns, look = s.readTurns(evs)
		read = append(read, look...)
	}
	if err := p.Pipeline(work, conn, append(stmts, read...)); err != nil {
		failGroup(g, err)
		return
	}
	if !locked {
		if err := p.Pipeline(work, conn, append([]pipeStmt{{What: "lock", Query: p.LockAppendSQL()}}, read...)); err != nil {
			failGroup(g, err)
			return
		}
	}

	pc := &pipeConn{p: p, conn: conn}
	if fast {
		switch done, err := s.groupFastPipelined(work, p, conn, pc, h, turns, g); {
		case err != nil:
			failGroup(g, err)
			return
		case done:
			ended = true
			return
		}
	}
	var writer *groupReq // the member whose statements are pending
	// undo rolls writer back to its savepoint after err, in a round trip
	// of its own: in an aborted transaction the server refuses to parse
	// any statement but one that ends it or rolls back, and pgx parses
	// each new statement of a pipeline before it sends the pipeline. The
	// savepoint stays (the next one of the same name hides it).
	undo := func(err error, more ...pipeStmt) error {
		writer.err = ctxErr(writer.ctx, writer.b.stream(), fmt.Errorf("append to %s: %w", writer.b.stream(), err))
		writer.recs, writer.fresh = nil, false
		writer = nil
		if err := p.Pipeline(work, conn, []pipeStmt{{What: "roll back to savepoint", Query: rollbackSavepointSQL}}); err != nil {
			return err
		}
		if len(more) == 0 {
			return nil
		}
		return p.Pipeline(work, conn, more)
	}
	for _, m := range g {
		if m.err != nil {
			continue
		}
		reads, head := s.headReads(m.b)
		n := len(pc.pending)
		err := p.Pipeline(work, conn, append(pc.pending, reads...))
		pc.pending = nil
		var pe *pipeError
		if errors.As(err, &pe) && pe.I < n && writer != nil {
			err = undo(&projector.DeferredError{What: pe.What, Err: pe.Err}, reads...)
		}
		if err != nil {
			failGroup(g, err)
			return
		}
		writer = nil
		last, versions, seen := head()
		if seen {
			m.recs, m.err = s.priorCommand(work, pc, m.b)
			if m.err != nil && !errors.Is(m.err, ErrCommandConflict) {
				failGroup(g, m.err)
				return
			}
			continue
		}
		if m.recs, m.err = m.b.number(last, versions); m.err != nil {
			continue
		}
		m.fresh = true
		writer = m
		pc.pending = append([]pipeStmt{{What: "savepoint", Query: savepointSQL}}, s.inserts(m.recs, true)...)
		if !s.opts.NoProjections {
			if err := s.projectAppend(work, pc, m.recs, nil); err != nil {
				if len(pc.pending) > 0 && pc.pending[0].Query == savepointSQL {
					// Nothing of it was sent.
					pc.pending = nil
					m.err = fmt.Errorf("append to %s: project: %w", m.b.stream(), err)
					m.recs, m.fresh, writer = nil, false, nil
					continue
				}
				pc.pending = nil
				if !errors.As(err, new(*projector.DeferredError)) {
					err = fmt.Errorf("project: %w", err)
				}
				if err := undo(err); err != nil {
					failGroup(g, err)
					return
				}
				continue
			}
		}
		pc.Defer("release savepoint", releaseSavepointSQL)
	}

	for {
		if allEnded(g) {
			abandon(g)
			return
		}
		commit := len(pc.pending)
		stmts := append(pc.pending, pipeStmt{What: "commit", Query: "COMMIT"})
		pc.pending = nil
		err := p.Pipeline(work, conn, stmts)
		if err == nil {
			ended = true
			return
		}
		switch p.CommitOutcome(err, commit) {
		case commitFailed:
			var pe *pipeError
			if errors.As(err, &pe) && pe.I < commit && writer != nil {
				// The last writer's statements failed: COMMIT the others.
				writer.err = ctxErr(writer.ctx, writer.b.stream(), fmt.Errorf("append to %s: %w", writer.b.stream(), &projector.DeferredError{What: pe.What, Err: pe.Err}))
				writer.recs, writer.fresh = nil, false
				writer = nil
				pc.pending = []pipeStmt{{What: "roll back to savepoint", Query: rollbackSavepointSQL}} // and COMMIT: see undo
				continue
			}
			failGroup(g, err) // the deferred ROLLBACK ends the aborted transaction
			return
		case committed:
			ended = true
			discard(conn)
			return
		}
		ended = true
		discard(conn)
		s.settleGroup(g, err)
		return
	}
}

// projectAppend applies recs to the projections inside an append's
// transaction; a test hook may make it fail after the projection's
// statements, with a statement that fails in the database.
func (s *Store) projectAppend(ctx context.Context, q querier, recs []Recorded, turns *projector.TurnsRead) error {
	if err := s.project(ctx, q, recs, turns); err != nil {
		return err
	}
	if f := s.group.failAfter; f != nil && f(recs) {
		// peon_injected_fault: a NOT NULL column set to NULL fails when it
		// runs (not when it is prepared), after the append's statements.
		if _, err := q.ExecContext(ctx, s.d.Bind("UPDATE events SET event_id = NULL WHERE sequence = ? AND 'peon_injected_fault' <> ''"), recs[len(recs)-1].Sequence); err != nil {
			return err
		}
		return errors.New("the injected fault did not fail")
	}
	return nil
}

// The fast way through a group: when no member carries a command id that
// is stored or repeated in the group, the members' checks need nothing
// but the head, the versions of their streams and whether their commands
// are stored, which one read gives for all of them. Each member is then
// checked and numbered in Go in turn, against the versions the members
// before it leave (as its own head read would find them), and the events
// of those that pass are written as one batch and projected together. A
// failure of that batch (a member's projection, a constraint) rolls it
// back to a savepoint and the group goes the slow way, member by member,
// each in its own savepoint, where the failure is that member's alone.

// groupHead is the one read of the fast way: the last sequence, then for
// each command one column that is 1 when it is stored, then the version
// of each stream.
type groupHead struct {
	query    string
	args     []any
	streams  []string
	commands []string
	vals     []sql.NullInt64
}

// readGroupHead returns the read of g's head, or false when g does not go
// the fast way: a command repeated in the group, or too many streams for
// one statement.
func (s *Store) readGroupHead(g []*groupReq) (*groupHead, bool) {
	h := &groupHead{}
	seen := map[string]bool{}
	cmds := map[string]bool{}
	for _, m := range g {
		if id := m.b.opts.CommandID; id != "" {
			if cmds[id] {
				return nil, false
			}
			cmds[id] = true
			h.commands = append(h.commands, id)
		}
		for _, st := range m.b.streams {
			if !seen[st] {
				seen[st] = true
				h.streams = append(h.streams, st)
			}
		}
	}
	if len(h.streams) > maxShape || len(h.commands) > maxShape {
		return nil, false
	}
	var sb strings.Builder
	sb.WriteString("SELECT " + s.d.LastSequenceSQL())
	for _, c := range h.commands {
		sb.WriteString(", " + commandStoredSQL)
		h.args = append(h.args, c)
	}
	for _, st := range h.streams {
		sb.WriteString(", " + streamVersionSQL)
		h.args = append(h.args, st, st)
	}
	h.query = s.d.Bind(sb.String())
	h.vals = make([]sql.NullInt64, 1+len(h.commands)+len(h.streams))
	return h, true
}

func (h *groupHead) dest() []any {
	d := make([]any, len(h.vals))
	for i := range h.vals {
		d[i] = &h.vals[i]
	}
	return d
}

// number checks and numbers the members of g in turn from what h read,
// setting each one's records or its version conflict, and returns the
// records of all that pass, in order; false when a command is stored (the
// slow way answers it).
func (h *groupHead) number(g []*groupReq) ([]Recorded, bool) {
	for i := range h.commands {
		if h.vals[1+i].Valid {
			return nil, false
		}
	}
	last := h.vals[0].Int64
	versions := make(map[string]int64, len(h.streams))
	for i, st := range h.streams {
		versions[st] = h.vals[1+len(h.commands)+i].Int64
	}
	var all []Recorded
	for _, m := range g {
		if m.err != nil {
			continue
		}
		recs, err := m.b.number(last, versions)
		if err != nil {
			m.err = err
			continue
		}
		m.recs, m.fresh = recs, true
		last += int64(len(recs))
		all = append(all, recs...)
	}
	return all, true
}

// unnumber undoes number: the slow way begins from nothing.
func unnumber(g []*groupReq) {
	for _, m := range g {
		if m.err == nil || errors.Is(m.err, ErrVersionConflict) || errors.Is(m.err, ErrStreamPruned) {
			m.err = nil
		}
		m.recs, m.fresh = nil, false
	}
}

// groupFastTx runs g the fast way in tx (SQLite), and reports whether it
// did; when not, no member has an outcome, and when dirty tx holds writes
// of the fast way, which the caller rolls back.
func (s *Store) groupFastTx(ctx context.Context, tx *sql.Tx, h *groupHead, g []*groupReq) (fast, dirty bool) {
	if err := s.stmts.queryRow(ctx, tx, h.query, h.args, h.dest()...); err != nil {
		return false, false
	}
	all, ok := h.number(g)
	if !ok {
		unnumber(g)
		return false, false
	}
	// No savepoint: the transaction holds nothing else yet, so a failure
	// rolls all of it back and the slow way begins another. (On SQLite a
	// savepoint around writes keeps the pages they change in a
	// sub-journal, a temporary file.)
	// One prepared INSERT per row: an INSERT of several rows inside a
	// transaction makes SQLite keep a statement journal, a temporary file
	// (with the default temp_store), whose writes cost more than the
	// statements they would save.
	for start := 0; start < len(all); start++ {
		end := start + 1
		for _, st := range s.inserts(all[start:end], end == len(all)) {
			if _, err := s.stmts.exec(ctx, tx, st.Query, st.Args...); err != nil {
				unnumber(g)
				return false, true
			}
		}
	}
	if len(all) > 0 {
		if err := s.projectAppend(ctx, preparedTx{tx, &s.stmts}, all, nil); err != nil {
			unnumber(g)
			return false, true
		}
	}
	return true, false
}

// groupFastPipelined runs g the fast way on conn (PostgreSQL), after h
// was read under the lock: the members' INSERTs and projection statements
// in a savepoint, and the COMMIT, in one round trip (and one more for
// each projection statement whose result is read). done reports that the
// transaction is over, committed or not, with every member's outcome set;
// when it is false and err nil, nothing of the fast way is left in the
// transaction and the slow way goes on from the start. err is a failure
// of the whole group, before its COMMIT was sent.
func (s *Store) groupFastPipelined(work context.Context, p pipeliner, conn *sql.Conn, pc *pipeConn, h *groupHead, turns *projector.TurnsRead, g []*groupReq) (done bool, err error) {
	all, ok := h.number(g)
	if !ok {
		unnumber(g)
		return false, nil
	}
	if len(all) == 0 {
		return false, nil // every member conflicts: the caller rolls back
	}
	back := func() (bool, error) {
		unnumber(g)
		pc.pending = nil
		return false, p.Pipeline(work, conn, []pipeStmt{{What: "roll back to savepoint", Query: "ROLLBACK TO SAVEPOINT peon_fast"}})
	}
	pc.pending = append([]pipeStmt{{What: "savepoint", Query: "SAVEPOINT peon_fast"}}, s.inserts(all, true)...)
	if !s.opts.NoProjections {
		if err := s.projectAppend(work, pc, all, turns); err != nil {
			if len(pc.pending) > 0 && pc.pending[0].Query == "SAVEPOINT peon_fast" {
				unnumber(g) // nothing of it was sent
				pc.pending = nil
				return false, nil
			}
			return back()
		}
	}
	if allEnded(g) {
		pc.pending = nil
		abandon(g)
		return false, errors.New("every caller is gone") // abandon set each one's outcome
	}
	commit := len(pc.pending) + 1
	stmts := append(pc.pending, pipeStmt{What: "release savepoint", Query: "RELEASE SAVEPOINT peon_fast"}, pipeStmt{What: "commit", Query: "COMMIT"})
	pc.pending = nil
	err = p.Pipeline(work, conn, stmts)
	if err == nil {
		return true, nil
	}
	switch p.CommitOutcome(err, commit) {
	case commitFailed:
		var pe *pipeError
		if errors.As(err, &pe) && pe.I < commit {
			return back() // a statement of the batch: try member by member
		}
		return false, err
	case committed:
		discard(conn)
		return true, nil
	}
	discard(conn)
	s.settleGroup(g, err)
	return true, nil
}
