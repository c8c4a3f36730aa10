package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock/flocktest"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hold takes how on path for the test; the returned func releases it, at the latest when
// the test ends.
func hold(t *testing.T, path string, how int) func() {
	t.Helper()
	f := open(t, path)
	if err := Lock(context.Background(), f, how); err != nil {
		t.Fatal(err)
	}
	release := sync.OnceFunc(func() { Unlock(f) })
	t.Cleanup(release)
	return release
}

// waiter runs Lock(ctx, a new descriptor of path, how) in a goroutine: its result comes
// on got, and finished closes when it returned. A lock it gets is released at once. When
// the test ends, release (the holder's) is called and the waiter waited for.
func waiter(t *testing.T, ctx context.Context, path string, how int, release func()) (got <-chan error, finished <-chan struct{}) {
	t.Helper()
	f := open(t, path)
	res, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		err := Lock(ctx, f, how)
		if err == nil {
			Unlock(f)
		}
		res <- err
	}()
	t.Cleanup(func() {
		release()
		<-done
	})
	return res, done
}

func TestLockWaitsForTheHolder(t *testing.T) {
	path := filepath.Join(scratch.Dir(t), "l")
	release := hold(t, path, unix.LOCK_EX)
	got, finished := waiter(t, context.Background(), path, unix.LOCK_EX, release)
	// The kernel queues the second request behind the first holder: it did not get the
	// lock while the first held it.
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(finished), path) {
		t.Fatalf("a second holder got the lock while the first held it (err %v)", <-got)
	}
	release()
	if err := <-got; err != nil {
		t.Fatalf("the waiter did not get the freed lock: %v", err)
	}
}

func TestSharedLocksCoexist(t *testing.T) {
	path := filepath.Join(scratch.Dir(t), "l")
	release := hold(t, path, unix.LOCK_SH)
	got, finished := waiter(t, context.Background(), path, unix.LOCK_SH, release)
	// The second shared lock is granted, or the kernel queues it behind the first.
	if flocktest.AwaitWaiting(t, 1, flocktest.Closed(finished), path) {
		t.Fatal("the second shared lock waits for the first")
	}
	if err := <-got; err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
}

// A waiter that gave up must not keep the lock the kernel grants it later.
func TestAbandonedWaitLeavesTheLockFree(t *testing.T) {
	path := filepath.Join(scratch.Dir(t), "l")
	release := hold(t, path, unix.LOCK_EX)
	ctx, expire := flocktest.ManualDeadline()
	got, finished := waiter(t, ctx, path, unix.LOCK_EX, release)
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(finished), path) {
		t.Fatalf("the waiter did not wait for the holder: %v", <-got)
	}
	// Its deadline passes while the kernel has it queued.
	expire()
	if err := <-got; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the context's error, got %v", err)
	}
	if _, waiting := flocktest.Count(t, path); waiting != 1 {
		t.Fatalf("%d requests queued in the kernel, want the abandoned one", waiting)
	}
	// The holder leaves: the kernel grants the abandoned request, which Lock releases.
	release()
	c := open(t, path)
	if err := Lock(context.Background(), c, unix.LOCK_EX); err != nil {
		t.Fatalf("the lock stayed with the waiter that gave up: %v", err)
	}
	Unlock(c)
	// Nothing is left on the file: the abandoned request was granted and let go.
	flocktest.Await(func() bool {
		held, waiting := flocktest.Count(t, path)
		return held == 0 && waiting == 0
	}, func() bool { return false })
}

func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a, b := open(t, path), open(t, path)
	defer b.Close()
	if ok, err := TryLock(a, unix.LOCK_EX); !ok || err != nil {
		t.Fatalf("free lock: %v %v", ok, err)
	}
	if ok, err := TryLock(b, unix.LOCK_EX); ok || err != nil {
		t.Fatalf("held lock: %v %v", ok, err)
	}
	Unlock(a)
}
