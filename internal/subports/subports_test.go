package subports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// fakeTrunks records the calls; a call blocks until release is closed (when set), so
// that changes pile up behind the first.
type fakeTrunks struct {
	mu       sync.Mutex
	calls    []string
	subports map[string]int
	failBulk error
	first    chan struct{} // closed when the first call starts
	release  chan struct{}
	once     sync.Once
}

func newFake() *fakeTrunks {
	return &fakeTrunks{subports: map[string]int{}, first: make(chan struct{})}
}

func (f *fakeTrunks) enter(call string) {
	f.once.Do(func() { close(f.first) })
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeTrunks) AddSubport(_ context.Context, _, port string, vlan int) error {
	f.enter("add 1")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subports[port] = vlan
	return nil
}

func (f *fakeTrunks) RemoveSubport(_ context.Context, _, port string) error {
	f.enter("remove 1")
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subports, port)
	return nil
}

func (f *fakeTrunks) AddSubports(_ context.Context, _ string, subs []neutron.Subport) error {
	f.enter(fmt.Sprintf("add %d", len(subs)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failBulk != nil {
		return f.failBulk
	}
	for _, s := range subs {
		f.subports[s.PortID] = s.VLAN
	}
	return nil
}

func (f *fakeTrunks) RemoveSubports(_ context.Context, _ string, ports []string) error {
	f.enter(fmt.Sprintf("remove %d", len(ports)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failBulk != nil {
		return f.failBulk
	}
	for _, p := range ports {
		delete(f.subports, p)
	}
	return nil
}

func queueLen(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "queue.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var q []entry
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	return len(q)
}

// Changes made while a call is in flight go together in the next call.
func TestChangesWaitingGoInOneCall(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	b, err := New(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errs := make(chan error, 11)
	go func() { errs <- b.Add(ctx, "t1", "p0", 100) }()
	<-f.first // p0 is being sent, alone
	for i := 1; i <= 10; i++ {
		go func() { errs <- b.Add(ctx, "t1", fmt.Sprintf("p%d", i), 100+i) }()
	}
	// Every waiting change is in the queue before the first call returns.
	deadline := time.Now().Add(10 * time.Second)
	for queueLen(t, dir) < 11 {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d changes, want 11", queueLen(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(f.release)
	for i := 0; i < 11; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(f.calls) != 2 || f.calls[0] != "add 1" || f.calls[1] != "add 10" {
		t.Fatalf("calls %v, want [add 1, add 10]", f.calls)
	}
	for i := 0; i <= 10; i++ {
		if v := f.subports[fmt.Sprintf("p%d", i)]; v != 100+i {
			t.Errorf("p%d has vlan %d", i, v)
		}
	}
	if n := queueLen(t, dir); n != 0 {
		t.Fatalf("%d changes left in the queue", n)
	}
}

// Removals and additions waiting together go in one call each, removals first.
func TestRemovalsBeforeAdditions(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	b, _ := New(dir, f)
	ctx := context.Background()
	errs := make(chan error, 7)
	go func() { errs <- b.Add(ctx, "t1", "first", 1) }()
	<-f.first
	for i := 0; i < 3; i++ {
		go func() { errs <- b.Remove(ctx, "t1", fmt.Sprintf("old%d", i)) }()
		go func() { errs <- b.Add(ctx, "t1", fmt.Sprintf("new%d", i), 10+i) }()
	}
	for queueLen(t, dir) < 7 {
		time.Sleep(5 * time.Millisecond)
	}
	close(f.release)
	for i := 0; i < 7; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"add 1", "remove 3", "add 3"}
	if fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
}

// A batch Neutron refuses sends each change back to its process, to be made alone.
func TestFailedBatchGoesAlone(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	f.failBulk = neutron.ErrVLANInUse
	b, _ := New(dir, f)
	ctx := context.Background()
	errs := make(chan error, 4)
	go func() { errs <- b.Add(ctx, "t1", "p0", 1) }()
	<-f.first
	for i := 1; i <= 3; i++ {
		go func() { errs <- b.Add(ctx, "t1", fmt.Sprintf("p%d", i), 1+i) }()
	}
	for queueLen(t, dir) < 4 {
		time.Sleep(5 * time.Millisecond)
	}
	close(f.release)
	var alone int
	for i := 0; i < 4; i++ {
		err := <-errs
		switch {
		case errors.Is(err, ErrAlone):
			alone++
		case err != nil:
			t.Fatal(err)
		}
	}
	if alone != 3 {
		t.Fatalf("%d changes sent back, want the 3 of the failed batch", alone)
	}
}

// A change whose process died is dropped; one sent by a leader that died goes back to
// its own process.
func TestDeadProcessesInTheQueue(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	b, _ := New(dir, f)
	dead := deadPID(t)
	ctx := context.Background()
	// A change of a dead process, and one of this process that a dead leader was sending.
	err := b.update(ctx, func(q []entry) ([]entry, error) {
		return append(q,
			entry{ID: "gone", PID: dead, Trunk: "t1", Op: opAdd, Port: "orphan", VLAN: 5},
			entry{ID: "mine", PID: os.Getpid(), Trunk: "t1", Op: opAdd, Port: "p1", VLAN: 6, Leader: dead}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := b.lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	result, batch, err := b.take(ctx, "mine")
	unlock()
	if err != nil || result != resultAlone || batch != nil {
		t.Fatalf("take: result %q, batch %v, err %v; want alone", result, batch, err)
	}
	// A new change is sent alone: the dead process's change is gone, not sent with it.
	if err := b.Add(ctx, "t1", "p2", 7); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.calls) != "[add 1]" || f.subports["orphan"] != 0 {
		t.Fatalf("calls %v, subports %v", f.calls, f.subports)
	}
}

// A change whose caller gives up leaves the queue with it.
func TestGivingUpLeavesTheQueue(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	b, _ := New(dir, f)
	go func() { _ = b.Add(context.Background(), "t1", "p0", 1) }()
	<-f.first
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Add(ctx, "t1", "p1", 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	close(f.release)
	deadline := time.Now().Add(10 * time.Second)
	for queueLen(t, dir) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d changes left in the queue", queueLen(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.subports["p1"] != 0 {
		t.Fatal("the change given up was made")
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	return cmd.Process.Pid
}

// A process never sends the changes of a process with another project's credentials.
func TestChangesOfAnotherProjectWait(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	a, _ := New(dir, f)
	a.Project = "proj-a"
	b, _ := New(dir, f)
	b.Project = "proj-b"
	ctx := context.Background()
	errs := make(chan error, 5)
	go func() { errs <- a.Add(ctx, "t1", "a0", 1) }()
	<-f.first
	go func() { errs <- a.Add(ctx, "t1", "a1", 2) }()
	go func() { errs <- a.Add(ctx, "t1", "a2", 3) }()
	go func() { errs <- b.Add(ctx, "t1", "b1", 4) }()
	go func() { errs <- b.Add(ctx, "t1", "b2", 5) }()
	for queueLen(t, dir) < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	close(f.release)
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// a0 alone, then each project's two together, in either order.
	got := fmt.Sprint(f.calls)
	if got != "[add 1 add 2 add 2]" {
		t.Fatalf("calls %s, want a0 alone and then one call per project", got)
	}
}

// A change whose process gives up while another process is sending it may still be
// made: the process's undo (a removal) queues behind that call and is applied after it,
// so the subport does not stay.
func TestUndoOfAChangeInFlightComesAfterIt(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.release = make(chan struct{})
	b, _ := New(dir, f)
	ctx := context.Background()
	// A change of this process, waiting: the next leader sends it with its own.
	err := b.update(ctx, func(q []entry) ([]entry, error) {
		return append(q, entry{ID: "waiting", PID: os.Getpid(), Trunk: "t1", Op: opAdd, Port: "p1", VLAN: 2, Since: time.Now()}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- b.Add(ctx, "t1", "p2", 3) }()
	<-f.first // p1 and p2 are being sent
	// p1's process gives up (its entry leaves the queue) and undoes it.
	if err := b.update(ctx, func(q []entry) ([]entry, error) { return without(q, "waiting"), nil }); err != nil {
		t.Fatal(err)
	}
	go func() { errs <- b.Remove(ctx, "t1", "p1") }()
	for queueLen(t, dir) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	close(f.release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(f.calls) != "[add 2 remove 1]" {
		t.Fatalf("calls %v, want the batch and then the undo", f.calls)
	}
	if _, on := f.subports["p1"]; on || f.subports["p2"] != 3 {
		t.Fatalf("subports %v: want p2 alone", f.subports)
	}
	if n := queueLen(t, dir); n != 0 {
		t.Fatalf("%d changes left in the queue", n)
	}
}
