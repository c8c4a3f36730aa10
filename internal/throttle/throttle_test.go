package throttle

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/flock/flocktest"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

func TestSlotWaitEndsWithContext(t *testing.T) {
	dir := scratch.Dir(t)
	slots, _ := NewSlots(dir, 1)
	release, err := slots.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(release)
	t.Cleanup(release)
	ctx, expire := flocktest.ManualDeadline()
	got := waitForSlot(t, slots, ctx, release)
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(got.done), filepath.Join(dir, "slot-0")) {
		t.Fatalf("a second holder got the only slot (err %v)", got.result())
	}
	expire()
	if err := got.result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the caller's deadline", err)
	}
}

// A waiter that gave up must not keep the slot it is still queued for in the kernel.
func TestAbandonedWaitGivesTheSlotBack(t *testing.T) {
	dir := scratch.Dir(t)
	slots, _ := NewSlots(dir, 1)
	release, err := slots.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(release)
	t.Cleanup(release)
	ctx, expire := flocktest.ManualDeadline()
	got := waitForSlot(t, slots, ctx, release)
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(got.done), filepath.Join(dir, "slot-0")) {
		t.Fatalf("a second holder got the only slot (err %v)", got.result())
	}
	expire()
	if err := got.result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the caller's deadline", err)
	}
	// The kernel still has the abandoned request queued: it gets the slot when the
	// holder gives it back, and must let it go.
	release()
	again, err := slots.Acquire(context.Background())
	if err != nil {
		t.Fatalf("the slot stayed with the waiter that gave up: %v", err)
	}
	again()
}

// acquisition is a slots.Acquire running in a goroutine.
type acquisition struct {
	done chan struct{} // closed when Acquire returned
	err  error
}

func (a *acquisition) result() error {
	<-a.done
	return a.err
}

// waitForSlot calls slots.Acquire(ctx) in a goroutine, and gives back a slot it gets at
// once. When the test ends, release (the holder's) is called and the goroutine waited for.
func waitForSlot(t *testing.T, slots *Slots, ctx context.Context, release func()) *acquisition {
	a := &acquisition{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		var again func()
		again, a.err = slots.Acquire(ctx)
		if a.err == nil {
			again()
		}
	}()
	t.Cleanup(func() {
		release()
		<-a.done
	})
	return a
}
