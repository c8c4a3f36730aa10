// Package flock waits for flock(2) locks in the kernel, within a context. Processes that
// poll for a lock (a hundred ovn-docker runs queueing for the same VM) would take the
// CPU that the lock's holder and OpenStack need.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TryLock takes how (unix.LOCK_EX or unix.LOCK_SH) on f if it is free now.
func TryLock(f *os.File, how int) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, fmt.Errorf("flock %s: %w", f.Name(), err)
		}
	}
}

// Lock takes how on f, waiting until it is free or ctx ends. On success the caller
// unlocks and closes f (Unlock). On error f belongs to Lock, which closes it: when ctx
// ended, only once the kernel has granted and Lock has released the lock it still
// waited for.
func Lock(ctx context.Context, f *os.File, how int) error {
	ok, err := TryLock(f, how)
	if err != nil {
		f.Close()
		return err
	}
	if ok {
		return nil
	}
	got := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = unix.Flock(int(f.Fd()), how); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return fmt.Errorf("flock %s: %w", f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			if <-got == nil {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
			}
			f.Close()
		}()
		return ctx.Err()
	}
}

// Unlock releases the lock and closes f.
func Unlock(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}
