package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/flock/flocktest"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

func TestUpdateViewRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "st"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	err = s.Update(ctx, func(st *State) error {
		st.Attachments["a1"] = &Attachment{ID: "a1", Owner: "o", VLAN: 7, Phase: PhaseAttached, Created: now, IPs: []string{"10.0.0.5/24"}}
		st.LastVLAN = 7
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(st *State) error {
		a := st.Attachments["a1"]
		if a == nil || a.VLAN != 7 || a.Owner != "o" || !a.Created.Equal(now) || a.IPs[0] != "10.0.0.5/24" || st.LastVLAN != 7 {
			return fmt.Errorf("read back %+v", st)
		}
		if got := st.UsedVLANs(); got[7] != "a1" || len(got) != 1 {
			return fmt.Errorf("UsedVLANs = %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	_ = s.Update(ctx, func(st *State) error { st.LastVLAN = 1; return nil })
	boom := errors.New("boom")
	err := s.Update(ctx, func(st *State) error {
		st.LastVLAN = 99
		st.Attachments["x"] = &Attachment{ID: "x"}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	_ = s.View(ctx, func(st *State) error {
		if st.LastVLAN != 1 || len(st.Attachments) != 0 {
			t.Fatalf("a failed update was written: %+v", st)
		}
		return nil
	})
}

func TestPermissionsAreRootOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Update(context.Background(), func(st *State) error { st.LastVLAN = 3; return nil })
	for _, p := range []string{dir, filepath.Join(dir, fileName), filepath.Join(dir, lockName)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", p, fi.Mode().Perm())
		}
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.View(context.Background(), func(*State) error { return nil })
	if err == nil || !contains(err.Error(), "corrupt") {
		t.Fatalf("got %v, want a corrupt-file error", err)
	}
	if err := os.WriteFile(filepath.Join(dir, fileName), []byte(`{"version":99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.View(context.Background(), func(*State) error { return nil }); err == nil || !contains(err.Error(), "newer") {
		t.Fatalf("got %v, want a version error", err)
	}
}

func TestLockWaitEndsWithContext(t *testing.T) {
	s, _ := Open(scratch.Dir(t))
	held := make(chan struct{})
	release := make(chan struct{})
	letGo := sync.OnceFunc(func() { close(release) })
	holder := make(chan struct{})
	go func() {
		defer close(holder)
		_ = s.Update(context.Background(), func(*State) error { close(held); <-release; return nil })
	}()
	waiter := make(chan struct{})
	var err error
	t.Cleanup(func() {
		letGo()
		<-holder
		<-waiter
	})
	<-held
	ctx, expire := flocktest.ManualDeadline()
	go func() {
		defer close(waiter)
		err = s.Update(ctx, func(*State) error { return nil })
	}()
	// The second update waits in the kernel for the holder's lock; then its deadline
	// passes.
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(waiter), filepath.Join(s.Dir(), lockName)) {
		t.Fatalf("an update did not wait for the lock held by another (err %v)", err)
	}
	expire()
	<-waiter
	letGo()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

// Increments by many goroutines and several processes at once lose nothing.
func TestConcurrentUpdatesAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("STATE_TEST_CHILD_DIR"); dir != "" {
		t.Skip("child process")
	}
	dir := scratch.Dir(t)
	const procs, goroutines, each = 4, 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, procs+goroutines)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildIncrements$", "-test.count=1")
			cmd.Env = append(os.Environ(), "STATE_TEST_CHILD_DIR="+dir, "STATE_TEST_CHILD_N="+strconv.Itoa(each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v\n%s", err, out)
			}
		}()
	}
	s, _ := Open(dir)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := increment(s, each); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_ = s.View(context.Background(), func(st *State) error {
		if want := (procs + goroutines) * each; st.LastVLAN != want {
			t.Fatalf("counter = %d, want %d: updates were lost", st.LastVLAN, want)
		}
		return nil
	})
}

func TestChildIncrements(t *testing.T) {
	dir := os.Getenv("STATE_TEST_CHILD_DIR")
	if dir == "" {
		t.Skip("only runs as a child of TestConcurrentUpdatesAcrossProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("STATE_TEST_CHILD_N"))
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := increment(s, n); err != nil {
		t.Fatal(err)
	}
}

// increment adds n to the counter, one update at a time, each waiting for the lock as
// long as it takes (go test's -timeout is the backstop).
func increment(s *Store, n int) error {
	for i := 0; i < n; i++ {
		err := s.Update(context.Background(), func(st *State) error { st.LastVLAN++; return nil })
		if err != nil {
			return err
		}
	}
	return nil
}

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}
