// Package flocktest lets tests of code that waits for flock(2) locks order themselves on
// the kernel's state rather than on time. Count reads what the kernel has granted and
// queued on a file (/proc/locks), so a test can prove that a waiter is blocked in the
// kernel before it checks that the waiter did not get the lock, or ends its wait; and
// ManualDeadline is a context whose deadline passes when the test says, not when a clock
// does.
package flocktest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Count returns the flock(2) locks the kernel has granted (held) and those it has queued
// behind a holder (waiting) on the files at paths, as /proc/locks lists them. A file that
// does not exist has none.
func Count(t testing.TB, paths ...string) (held, waiting int) {
	t.Helper()
	ids := map[string]bool{}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); errors.Is(err, unix.ENOENT) {
			continue
		} else if err != nil {
			t.Fatalf("flocktest: %s: %v", p, err)
		}
		// The format of the kernel's lock_get_status: major:minor in hex, inode in decimal.
		ids[fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)] = true
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatalf("flocktest: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 123 fe:00:456 0 EOF", a waiter: "1: -> FLOCK ..."
		f := strings.Fields(sc.Text())
		queued := len(f) > 1 && f[1] == "->"
		if queued {
			f = append(f[:1], f[2:]...)
		}
		if len(f) < 6 || f[1] != "FLOCK" || !ids[f[5]] {
			continue
		}
		if queued {
			waiting++
		} else {
			held++
		}
	}
	return held, waiting
}

// Await polls until cond holds and reports true, or reports false as soon as failed holds
// (the awaited thing demonstrably did not happen: a waiter returned instead of waiting).
// It has no deadline of its own: go test's -timeout ends a wait that never ends.
func Await(cond, failed func() bool) bool {
	for {
		if cond() {
			return true
		}
		if failed() {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// AwaitWaiting waits until the kernel has n flock(2) requests queued behind a holder on
// the files at paths, and reports true; false as soon as failed holds first.
func AwaitWaiting(t testing.TB, n int, failed func() bool, paths ...string) bool {
	t.Helper()
	return Await(func() bool {
		_, waiting := Count(t, paths...)
		return waiting >= n
	}, failed)
}

// Closed reports whether ch is closed: a failed func for Await from a channel that a
// goroutine closes when it returns.
func Closed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// ManualDeadline returns a context whose deadline passes when expire is called: its Done
// channel closes and Err says context.DeadlineExceeded, as when a timeout's clock runs
// out, but at the point of the test's choosing. It reports no deadline time.
func ManualDeadline() (ctx context.Context, expire func()) {
	d := &manual{done: make(chan struct{})}
	return d, func() { d.once.Do(func() { close(d.done) }) }
}

type manual struct {
	done chan struct{}
	once sync.Once
}

func (d *manual) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d *manual) Done() <-chan struct{}       { return d.done }
func (d *manual) Value(any) any               { return nil }

func (d *manual) Err() error {
	select {
	case <-d.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (d *manual) String() string { return "flocktest.ManualDeadline" }
