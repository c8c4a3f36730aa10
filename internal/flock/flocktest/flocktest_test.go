package flocktest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCountSeesHoldersAndWaiters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l")
	if held, waiting := Count(t, path); held != 0 || waiting != 0 {
		t.Fatalf("a missing file: %d held, %d waiting", held, waiting)
	}
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if err := unix.Flock(int(a.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = unix.Flock(int(b.Fd()), unix.LOCK_EX)
	}()
	if !AwaitWaiting(t, 1, Closed(done), path) {
		t.Fatal("the second request was not queued")
	}
	if held, waiting := Count(t, path, filepath.Join(dir, "other")); held != 1 || waiting != 1 {
		t.Fatalf("%d held, %d waiting, want 1 and 1", held, waiting)
	}
	_ = unix.Flock(int(a.Fd()), unix.LOCK_UN)
	<-done
	if held, waiting := Count(t, path); held != 1 || waiting != 0 {
		t.Fatalf("%d held, %d waiting, want the waiter's lock alone", held, waiting)
	}
}

func TestManualDeadline(t *testing.T) {
	ctx, expire := ManualDeadline()
	if ctx.Err() != nil || Closed(ctx.Done())() {
		t.Fatal("expired before expire")
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	expire()
	expire()
	<-ctx.Done()
	<-child.Done()
	if ctx.Err() != context.DeadlineExceeded || child.Err() != context.DeadlineExceeded {
		t.Fatalf("err %v, child's %v: want the deadline", ctx.Err(), child.Err())
	}
}
