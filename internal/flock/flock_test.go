package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLockWaitsForTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a := open(t, path)
	if err := Lock(context.Background(), a, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		b := open(t, path)
		err := Lock(context.Background(), b, unix.LOCK_EX)
		if err == nil {
			Unlock(b)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a second holder got the lock while the first held it (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	Unlock(a)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the freed lock")
	}
}

func TestSharedLocksCoexist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a, b := open(t, path), open(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := Lock(ctx, a, unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if err := Lock(ctx, b, unix.LOCK_SH); err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	Unlock(a)
	Unlock(b)
}

// A waiter that gave up must not keep the lock the kernel grants it later.
func TestAbandonedWaitLeavesTheLockFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a := open(t, path)
	if err := Lock(context.Background(), a, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Lock(ctx, open(t, path), unix.LOCK_EX); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the context's error, got %v", err)
	}
	Unlock(a)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	c := open(t, path)
	if err := Lock(ctx2, c, unix.LOCK_EX); err != nil {
		t.Fatalf("the lock stayed with the waiter that gave up: %v", err)
	}
	Unlock(c)
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
