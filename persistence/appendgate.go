package persistence

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The gate in front of the pipelined (PostgreSQL) appends of one store.
//
// Appenders serialize on the server's append lock anyway. Waiting for it
// on the server ties a connection to each waiter, and a waiter whose
// context ends mid-statement loses that connection: pgx under
// database/sql can stop a statement in flight only by closing it, and a
// fresh one costs several times an append. So this process's appenders
// queue for the gate in Go, each with its own context, and take the
// server's lock when their turn comes (at once, unless another process or
// an AppendTx holds it). Once through the gate, an append's statements no
// longer run under the caller's context but under workContext, so a
// deadline that ends between round trips costs a ROLLBACK, not the
// connection; and an append whose deadline is shorter than the fastest
// recent append is refused before it begins.

const (
	// floorSamples is how many recent appends' durations the floor is
	// the least of.
	floorSamples = 16
	// floorMaxAge is how long a duration counts: a floor learned in a
	// slow moment must not refuse short deadlines for good.
	floorMaxAge = 5 * time.Second
	// appendGrace is how long an append's round trip in flight may go on
	// after the caller's context ended, before the store closes its
	// connection. A warm round trip takes about a millisecond.
	appendGrace = 250 * time.Millisecond
)

// appendGate is the Go-side append lock of a store and the floor its
// admissions are judged by.
type appendGate struct {
	slot chan struct{} // holds a token while an append is through

	mu     sync.Mutex
	recent [floorSamples]sample // ring of the last successful appends
	next   int
}

type sample struct {
	took time.Duration
	at   time.Time
}

func newAppendGate() *appendGate { return &appendGate{slot: make(chan struct{}, 1)} }

// enter waits for the gate until ctx ends.
func (g *appendGate) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case g.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave opens the gate for the next append.
func (g *appendGate) leave() { <-g.slot }

// admit refuses, with an error that matches context.DeadlineExceeded, an
// append whose context has ended or whose deadline leaves less time than
// the fastest recent append took: it could not finish, and beginning it
// would only hold up the others. It does not wait; see refuse.
func (g *appendGate) admit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline)
	floor := g.floor()
	if left >= floor {
		return nil
	}
	return fmt.Errorf("%w: the deadline left %v, and an append takes at least %v here; it was not begun",
		context.DeadlineExceeded, left.Round(time.Microsecond), floor.Round(time.Microsecond))
}

// refuse returns err, the refusal of admit, once ctx has ended. A refused
// append begins nothing and holds nothing (neither the gate nor a
// connection: call it after leaving the gate), but its error comes when
// its deadline ends, as the error of an append that was tried would: a
// caller that tries again at once is then paced by its deadline, instead
// of spinning on refusals and crowding the appends that can finish out of
// the processor.
func refuse(ctx context.Context, err error) error {
	<-ctx.Done()
	return err
}

// done records how long a successful append took through the gate.
func (g *appendGate) done(took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recent[g.next] = sample{took: took, at: time.Now()}
	g.next = (g.next + 1) % floorSamples
}

// floor is the least duration of the recent appends, 0 when there are
// none.
func (g *appendGate) floor() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var least time.Duration
	for _, s := range g.recent {
		if s.at.IsZero() || time.Since(s.at) > floorMaxAge {
			continue
		}
		if least == 0 || s.took < least {
			least = s.took
		}
	}
	return least
}

// workContext returns the context an append's statements run under once
// it is through the gate: it carries the values of ctxs[0] but not the end
// of any of ctxs, which the append checks between round trips instead; it
// ends grace after the last of ctxs has ended, so a round trip in flight
// then is cut short all the same, or when stop is called. A lone Append
// passes its own context and appendGrace; a group, its members'.
func workContext(grace time.Duration, ctxs ...context.Context) (work context.Context, stop func()) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctxs[0]))
	var (
		mu      sync.Mutex
		left    = len(ctxs)
		timer   *time.Timer
		stopped bool
	)
	unregister := make([]func() bool, len(ctxs))
	for i, ctx := range ctxs {
		unregister[i] = context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if left--; left == 0 && !stopped {
				timer = time.AfterFunc(grace, cancel)
			}
		})
	}
	return work, func() {
		for _, u := range unregister {
			u()
		}
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
