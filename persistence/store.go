package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/peonhq/peon/ent"
	"github.com/peonhq/peon/internal/projector"
)

// Store is an event store: the append-only log and the projection tables
// kept in step with it, on SQLite or PostgreSQL. It is safe for concurrent
// use by many goroutines, and several processes may open the same SQLite
// file or PostgreSQL database at once.
type Store struct {
	db     *sql.DB
	client *ent.Client
	d      dialect
	target Target
	opts   Options
	tel    *telemetry // logger, tracer and metric instruments

	// writeMu serializes this process's SQLite write transactions, so they
	// queue in Go instead of spinning in SQLite's busy handler.
	writeMu sync.Mutex
	serial  bool
	stmts   stmtCache   // the append path's prepared statements
	gate    *appendGate // this process's turn at the append lock (pipelined appends)
	group   committer   // the queue of group commit (group.go)

	grew        signal // fired after each commit that appended events
	subscribers atomic.Int64
	closed      atomic.Bool
	stop        context.CancelFunc // stops background work
	wg          sync.WaitGroup

	// verifyProgress, set by tests only, is Verify's progress callback
	// (see SetVerifyProgress in export_test.go).
	verifyProgress func(done, total int64)
}

func newStore(db *sql.DB, d dialect, t Target, opts *Options, tel *telemetry) *Store {
	drv := entsql.OpenDB(d.EntDialect(), db)
	s := &Store{
		db:     db,
		client: ent.NewClient(ent.Driver(drv)),
		d:      d,
		target: t,
		opts:   *opts,
		serial: d.Features().SerialWrites,
		gate:   newAppendGate(),
		grew:   newSignal(),
		tel:    tel,
	}
	tel.observeLag(s)
	return s
}

// start runs what opening does after migrating.
func (s *Store) start(ctx context.Context) error {
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if err := s.watch(bg); err != nil {
		return err
	}
	if !s.opts.NoProjections && !s.opts.ReadOnly {
		if s.d.Features().PreparesProjections {
			s.stmts.prepareAll(ctx, s.db, projector.Statements(s.d.Bind))
		}
		if _, err := s.CatchUp(ctx); err != nil {
			return err // CatchUp says what it was doing
		}
	}
	if s.opts.Retention != nil {
		s.maintainInBackground(bg)
	}
	return nil
}

// writable returns ErrClosed or ErrReadOnly when the store may not be
// written to.
func (s *Store) writable() error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case s.opts.ReadOnly:
		return ErrReadOnly
	}
	return nil
}

// Close stops the store's background work and closes the database. A
// closed store refuses further calls with ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.grew.fire()
	s.tel.stop()
	s.tel.log.Debug("peon: store closed", "target", s.target.Display)
	return s.client.Close()
}

// Client returns the ent client of the store's database, for application
// queries of the projection tables. Write to the log only through Append
// or AppendTx.
func (s *Store) Client() *ent.Client { return s.client }

// Target returns what the store was opened on.
func (s *Store) Target() Target { return s.target }

// Head returns the sequence of the last committed event, 0 when the log is
// empty. When retention pruned the streams of the last events, the next
// Append still numbers after theirs (see Store.Prune).
func (s *Store) Head(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	head, err := queryInt64(ctx, s.db, "SELECT MAX(sequence) FROM events")
	if err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	return head, nil
}

// signal wakes every waiter at once: wait returns a channel that fire
// closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() signal { return signal{ch: make(chan struct{})} }

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}
