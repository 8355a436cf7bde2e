package peontest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// fakeT stands in for a *testing.T where there is none (an Example) and
// where a test must watch a failure without failing itself. It does what
// testing.T does for the methods Open and the example call: Fatal and
// Fatalf record the message and end the test's goroutine
// (runtime.Goexit), Errorf records it, Cleanup functions run last first
// once the test function has returned and its context is cancelled. Any
// other method panics (the embedded TB is nil).
type fakeT struct {
	testing.TB
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	fatal    []string
	errs     []string
	cleanups []func()
}

func (t *fakeT) Helper()                  {}
func (t *fakeT) Context() context.Context { return t.ctx }

func (t *fakeT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *fakeT) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, fmt.Sprintf(format, args...))
}

func (t *fakeT) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.fatal = append(t.fatal, fmt.Sprintf(format, args...))
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *fakeT) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

// failures returns what Fatal, Fatalf and Errorf recorded.
func (t *fakeT) failures() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Concat(t.fatal, t.errs)
}

// runTest runs test as go test runs a test function, with ctx as its
// context: in a goroutine of its own, then the context is cancelled and
// the cleanups run, last first. It returns the fakeT, to read its
// failures.
func runTest(ctx context.Context, test func(t testing.TB)) *fakeT {
	t := &fakeT{}
	t.ctx, t.cancel = context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		test(t)
	}()
	<-done
	t.cancel()
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
	return t
}
