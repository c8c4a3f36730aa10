package testutil

import (
	"context"
	"testing"
	"time"
)

// timeoutMargin is how long before go test's -timeout the contexts below end: time for
// the test to say what it was waiting for and to run its cleanups.
const timeoutMargin = 30 * time.Second

// Context is what a test's waits on outside things (a daemon, the kernel, the stack) run
// in: it ends when the test ends, or shortly before go test's -timeout would kill the
// test binary, so that a wait that never ends fails the test with its own message
// instead of the timeout's goroutine dump. It is no bound that a passing test relies on:
// however slow the machine, a wait that can end gets all the time the run has. Called
// from a cleanup (the test has ended), it is TimeoutContext's.
func Context(t testing.TB) context.Context {
	parent := t.Context()
	if parent.Err() != nil {
		parent = context.Background()
	}
	ctx, cancel := timeoutContext(t, parent)
	t.Cleanup(cancel)
	return ctx
}

// TimeoutContext is Context for what runs after the test body (cleanups, background
// daemons a cleanup still talks to): it does not end with the test, only shortly before
// go test's -timeout. The caller cancels it.
func TimeoutContext(t testing.TB) (context.Context, context.CancelFunc) {
	return timeoutContext(t, context.Background())
}

func timeoutContext(t testing.TB, parent context.Context) (context.Context, context.CancelFunc) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			margin := min(timeoutMargin, time.Until(deadline)/2)
			return context.WithDeadline(parent, deadline.Add(-margin))
		}
	}
	return context.WithCancel(parent)
}
