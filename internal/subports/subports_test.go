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
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/flock/flocktest"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

// fakeTrunks records the calls; a call blocks until release is closed (when set), so
// that changes pile up behind the first.
type fakeTrunks struct {
	mu       sync.Mutex
	calls    []string
	subports map[string]int
	failBulk error
	first    chan struct{} // closed when the first call starts
	entered  atomic.Int32  // calls started
	release  chan struct{}
	once     sync.Once
	let      func() // closes release, once
}

func newFake() *fakeTrunks {
	return &fakeTrunks{subports: map[string]int{}, first: make(chan struct{}), let: func() {}}
}

// held makes the fake's calls wait until let is called.
func (f *fakeTrunks) held() *fakeTrunks {
	f.release = make(chan struct{})
	f.let = sync.OnceFunc(func() { close(f.release) })
	return f
}

func (f *fakeTrunks) enter(call string) {
	f.entered.Add(1)
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

// rig runs a test's changes in goroutines and follows the queue through the Batchers'
// write hook, so that the test waits for the queue to hold what it expects rather than
// polling the file against a deadline.
type rig struct {
	t        *testing.T
	mu       sync.Mutex
	cond     *sync.Cond
	queued   int // the queue's length at its last write
	returned int // changes started with start that returned
	changes  []*change
	wg       sync.WaitGroup
}

// change is one change started by a rig.
type change struct {
	done chan struct{} // closed when it returned
	err  error
}

// result waits for the change to return and gives its error.
func (c *change) result() error {
	<-c.done
	return c.err
}

// newRig follows the queue written by bs. When the test ends, the fake's calls are let
// go and every change started is waited for, so that none outlives the test.
func newRig(t *testing.T, f *fakeTrunks, bs ...*Batcher) *rig {
	r := &rig{t: t}
	r.cond = sync.NewCond(&r.mu)
	for _, b := range bs {
		b.written = func(q []entry) {
			r.mu.Lock()
			r.queued = len(q)
			r.mu.Unlock()
			r.cond.Broadcast()
		}
	}
	t.Cleanup(func() {
		f.let()
		r.wg.Wait()
	})
	return r
}

// start makes a change (fn) in a goroutine.
func (r *rig) start(fn func() error) *change {
	c := &change{done: make(chan struct{})}
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c.err = fn()
		close(c.done)
		r.mu.Lock()
		r.returned++
		r.mu.Unlock()
		r.cond.Broadcast()
	}()
	return c
}

// waitQueued waits until the queue holds n changes. Every change started waits (behind
// the held call, or in it) until the test lets the fake go: one that returns first
// fails the test. There is no deadline: go test's -timeout is the backstop.
func (r *rig) waitQueued(n int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.queued != n {
		if r.returned > 0 {
			r.t.Fatalf("a change returned while the queue held %d changes, before it held %d", r.queued, n)
		}
		r.cond.Wait()
	}
}

// wait returns the results of the changes started, in the order they were started.
func (r *rig) wait() []error {
	r.mu.Lock()
	changes := r.changes
	r.mu.Unlock()
	errs := make([]error, len(changes))
	for i, c := range changes {
		errs[i] = c.result()
	}
	return errs
}

// Changes made while a call is in flight go together in the next call.
func TestChangesWaitingGoInOneCall(t *testing.T) {
	dir := scratch.Dir(t)
	f := newFake().held()
	b, err := New(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, f, b)
	ctx := context.Background()
	r.start(func() error { return b.Add(ctx, "t1", "p0", 100) })
	<-f.first // p0 is being sent, alone
	for i := 1; i <= 10; i++ {
		r.start(func() error { return b.Add(ctx, "t1", fmt.Sprintf("p%d", i), 100+i) })
	}
	// Every waiting change is in the queue before the first call returns.
	r.waitQueued(11)
	f.let()
	for _, err := range r.wait() {
		if err != nil {
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
	dir := scratch.Dir(t)
	f := newFake().held()
	b, _ := New(dir, f)
	r := newRig(t, f, b)
	ctx := context.Background()
	r.start(func() error { return b.Add(ctx, "t1", "first", 1) })
	<-f.first
	for i := 0; i < 3; i++ {
		r.start(func() error { return b.Remove(ctx, "t1", fmt.Sprintf("old%d", i)) })
		r.start(func() error { return b.Add(ctx, "t1", fmt.Sprintf("new%d", i), 10+i) })
	}
	r.waitQueued(7)
	f.let()
	for _, err := range r.wait() {
		if err != nil {
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
	dir := scratch.Dir(t)
	f := newFake().held()
	f.failBulk = neutron.ErrVLANInUse
	b, _ := New(dir, f)
	r := newRig(t, f, b)
	ctx := context.Background()
	r.start(func() error { return b.Add(ctx, "t1", "p0", 1) })
	<-f.first
	for i := 1; i <= 3; i++ {
		r.start(func() error { return b.Add(ctx, "t1", fmt.Sprintf("p%d", i), 1+i) })
	}
	r.waitQueued(4)
	f.let()
	var alone int
	for _, err := range r.wait() {
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
	dir := scratch.Dir(t)
	f := newFake().held()
	b, _ := New(dir, f)
	r := newRig(t, f, b)
	r.start(func() error { return b.Add(context.Background(), "t1", "p0", 1) })
	<-f.first
	ctx, expire := flocktest.ManualDeadline()
	gaveUp := r.start(func() error { return b.Add(ctx, "t1", "p1", 2) })
	// p1 is queued, and waits in the kernel for the leader lock that p0's process holds;
	// then its caller's deadline passes.
	r.waitQueued(2)
	if !flocktest.AwaitWaiting(t, 1, flocktest.Closed(gaveUp.done), filepath.Join(dir, "leader.lock")) {
		t.Fatalf("p1 did not wait for the leader: %v", gaveUp.result())
	}
	expire()
	if err := gaveUp.result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if n := queueLen(t, dir); n != 1 {
		t.Fatalf("%d changes in the queue, want p0's alone", n)
	}
	f.let()
	for _, err := range r.wait() {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	if n := queueLen(t, dir); n != 0 {
		t.Fatalf("%d changes left in the queue", n)
	}
	if fmt.Sprint(f.calls) != "[add 1]" || f.subports["p1"] != 0 {
		t.Fatalf("calls %v, subports %v: the change given up was made", f.calls, f.subports)
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
	dir := scratch.Dir(t)
	f := newFake().held()
	a, _ := New(dir, f)
	a.Project = "proj-a"
	b, _ := New(dir, f)
	b.Project = "proj-b"
	r := newRig(t, f, a, b)
	ctx := context.Background()
	r.start(func() error { return a.Add(ctx, "t1", "a0", 1) })
	<-f.first
	r.start(func() error { return a.Add(ctx, "t1", "a1", 2) })
	r.start(func() error { return a.Add(ctx, "t1", "a2", 3) })
	r.start(func() error { return b.Add(ctx, "t1", "b1", 4) })
	r.start(func() error { return b.Add(ctx, "t1", "b2", 5) })
	r.waitQueued(5)
	f.let()
	for _, err := range r.wait() {
		if err != nil {
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
	dir := scratch.Dir(t)
	f := newFake().held()
	b, _ := New(dir, f)
	r := newRig(t, f, b)
	ctx := context.Background()
	// A change of this process, waiting: the next leader sends it with its own.
	err := b.update(ctx, func(q []entry) ([]entry, error) {
		return append(q, entry{ID: "waiting", PID: os.Getpid(), Trunk: "t1", Op: opAdd, Port: "p1", VLAN: 2, Since: time.Now()}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.start(func() error { return b.Add(ctx, "t1", "p2", 3) })
	<-f.first // p1 and p2 are being sent
	// p1's process gives up (its entry leaves the queue) and undoes it.
	if err := b.update(ctx, func(q []entry) ([]entry, error) { return without(q, "waiting"), nil }); err != nil {
		t.Fatal(err)
	}
	r.start(func() error { return b.Remove(ctx, "t1", "p1") })
	// The undo is queued, and waits in the kernel for the leader lock while the batch is
	// in flight: no second call starts.
	r.waitQueued(2)
	if !flocktest.AwaitWaiting(t, 1, func() bool { return f.entered.Load() > 1 }, filepath.Join(dir, "leader.lock")) {
		t.Fatal("the undo was sent while the change it undoes was in flight")
	}
	f.let()
	for _, err := range r.wait() {
		if err != nil {
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
