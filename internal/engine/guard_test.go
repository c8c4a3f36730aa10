package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeGuard records its calls in the world, so their order against the others shows.
type fakeGuard struct{ w *world }

func (g fakeGuard) Ensure(ctx context.Context) (int, error) {
	_, err := g.w.enter(ctx, "guard.Ensure")
	return 1, err
}

// TestAttachEnsuresGuardFirst: the guard is made sure of before anything of the
// container's is made, and when it cannot be, nothing is made at all.
func TestAttachEnsuresGuardFirst(t *testing.T) {
	h := newHarness(t)
	h.e.cfg.Guard = fakeGuard{h.w}
	h.attach(t, h.request("c1", "eth0"))
	if log := names(h.w.log()); len(log) == 0 || log[0] != "guard.Ensure" {
		t.Fatalf("calls %v: want guard.Ensure first", log)
	}

	h2 := newHarness(t)
	h2.e.cfg.Guard = fakeGuard{h2.w}
	h2.w.failAt("guard.Ensure", 1, errors.New("the bridge refused the flows"))
	_, err := h2.e.Attach(context.Background(), h2.request("c2", "eth0"))
	if err == nil || !strings.Contains(err.Error(), "ra guard on "+testBridge+": the bridge refused the flows") {
		t.Fatalf("err %v, want the guard's", err)
	}
	if log := names(h2.w.log()); len(log) != 1 {
		t.Errorf("calls %v: want none after the guard's", log)
	}
	h2.assertClean(t)
}

// TestPlumbEnsuresGuard: the split attach (Prepare, then Plumb: run, the plugin, the
// pools) makes sure of the guard before the veth; when it cannot, the attachment stays
// prepared with nothing local.
func TestPlumbEnsuresGuard(t *testing.T) {
	h := newHarness(t)
	h.e.cfg.Guard = fakeGuard{h.w}
	req := h.request("c1", "eth0")
	att, err := h.e.Prepare(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	h.w.failAt("guard.Ensure", 1, errors.New("no OpenFlow socket"))
	if _, err := h.e.Plumb(context.Background(), att.ID, req); err == nil || !strings.Contains(err.Error(), "ra guard") {
		t.Fatalf("plumb: %v, want the guard's error", err)
	}
	if log := names(h.w.log()); len(log) != 1 || log[0] != "guard.Ensure" {
		t.Errorf("calls %v: want the guard's alone", log)
	}
	if _, err := h.e.Plumb(context.Background(), att.ID, req); err != nil {
		t.Fatal(err)
	}
	if log := names(h.w.log())[1:]; len(log) < 2 || log[0] != "guard.Ensure" {
		t.Errorf("calls %v: want guard.Ensure first", log)
	}
}
