package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// replugHarness attaches one interface in /run/netns/o, as a sandbox's first start does.
func replugHarness(t *testing.T, tune ...func(*Config)) (*harness, *state.Attachment) {
	t.Helper()
	h := newHarness(t, tune...)
	att := h.attach(t, h.request("o", "eth0"))
	if err := h.e.SetNote(context.Background(), att.ID, "an old note"); err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	return h, att
}

// sameNeutron fails unless the world still has the attachment's port, as its subport
// with its VLAN: a replug never touches Neutron.
func sameNeutron(t *testing.T, h *harness, att *state.Attachment) {
	t.Helper()
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.w.ports[att.PortID] == nil {
		t.Fatalf("port %s is gone", att.PortID)
	}
	if v := h.w.trunk.Subports[att.PortID]; v != att.VLAN {
		t.Fatalf("subport %s has VLAN %d, want %d", att.PortID, v, att.VLAN)
	}
	for _, c := range h.w.calls {
		if strings.HasPrefix(c.Name, "neutron.") {
			t.Errorf("replug called %s%v", c.Name, c.Args)
		}
	}
}

func TestReplugIntoNewNetNS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oldGone bool // the old netns died, and the pair with it (dockerd restarted)
	}{{"old pair gone", true}, {"old pair still there", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h, att := replugHarness(t)
			if tc.oldGone {
				h.w.dropNetNS(att.NetNS)
			}
			var phases []state.Phase
			h.onFault = func(step string) {
				if a, _ := h.e.Attachment(context.Background(), att.ID); a != nil {
					phases = append(phases, a.Phase)
				}
			}
			got, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true)
			if err != nil {
				t.Fatal(err)
			}
			wantNames(t, "replug", h.w.log(), "ovs.DeletePort", "links.Delete", "links.Create", "ovs.AddAccessPort", "links.Probe")
			// Journaled: replug at each step, attached at the end.
			want := []state.Phase{state.PhaseReplug, state.PhaseReplug, state.PhaseReplug, state.PhaseReplug, state.PhaseAttached}
			if len(phases) != len(want) {
				t.Fatalf("phases at the fault points: %v, want %v", phases, want)
			}
			for i := range want {
				if phases[i] != want[i] {
					t.Fatalf("phases at the fault points: %v, want %v", phases, want)
				}
			}
			sameNeutron(t, h, att)
			h.w.mu.Lock()
			v, ok := h.w.veths[att.HostIf]
			p := h.w.ovsPorts[att.HostIf]
			h.w.mu.Unlock()
			if !ok || v.netns != "/run/netns/o2" || v.spec.IfName != "eth0" || v.spec.MAC.String() != att.MAC || len(v.spec.Gateways) == 0 {
				t.Fatalf("the new pair: %+v (spec %+v), want eth0 with %s and the gateway in /run/netns/o2", v, v.spec, att.MAC)
			}
			if len(v.spec.Addrs) != len(att.IPs) {
				t.Fatalf("the new pair has addresses %v, want %v", v.spec.Addrs, att.IPs)
			}
			if p.Tag != att.VLAN || p.ExternalIDs[ExtAttachment] != att.ID {
				t.Fatalf("the access port: %+v, want tag %d", p, att.VLAN)
			}
			a, _ := h.e.Attachment(context.Background(), att.ID)
			if a.NetNS != "/run/netns/o2" || a.Phase != state.PhaseAttached || a.PID != 0 || a.Error != "" || a.Note != "" {
				t.Fatalf("after the replug: %+v", a)
			}
			if got.MAC != att.MAC || got.VLAN != att.VLAN || got.PortID != att.PortID {
				t.Fatalf("replug answered %+v", got)
			}
			if err := h.e.Detach(context.Background(), att.ID); err != nil {
				t.Fatal(err)
			}
			h.assertClean(t)
		})
	}
}

func TestReplugWithoutDefaultRoute(t *testing.T) {
	h, att := replugHarness(t)
	if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", false); err != nil {
		t.Fatal(err)
	}
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if s := h.w.veths[att.HostIf].spec; len(s.Gateways) != 0 {
		t.Fatalf("a secondary interface got gateways %v", s.Gateways)
	}
}

func TestReplugFailureKeepsThePort(t *testing.T) {
	for _, tc := range []struct {
		call     string
		wantVeth bool
	}{
		{"ovs.DeletePort", true}, // nothing deleted yet: the old pair stays, as it was
		{"links.Delete", true},
		{"links.Create", false},
		{"ovs.AddAccessPort", false},
	} {
		t.Run(tc.call, func(t *testing.T) {
			h, att := replugHarness(t)
			h.w.failAt(tc.call, 1, errBoom)
			if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true); !errors.Is(err, errBoom) {
				t.Fatalf("replug: %v", err)
			}
			sameNeutron(t, h, att)
			a, _ := h.e.Attachment(context.Background(), att.ID)
			// At rest, in its old netns, with the error: the next start tries again.
			if a.Phase != state.PhaseAttached || a.PID != 0 || a.NetNS != att.NetNS || !strings.Contains(a.Error, "boom") {
				t.Fatalf("after a failed replug: %+v", a)
			}
			h.w.mu.Lock()
			v, ok := h.w.veths[att.HostIf]
			h.w.mu.Unlock()
			if ok != tc.wantVeth || (ok && v.netns == "/run/netns/o2") {
				t.Fatalf("veth after the failure: %v %+v", ok, v)
			}
			if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true); err != nil {
				t.Fatalf("replug again: %v", err)
			}
			if a, _ := h.e.Attachment(context.Background(), att.ID); a.NetNS != "/run/netns/o2" || a.Error != "" {
				t.Fatalf("after the second replug: %+v", a)
			}
			if err := h.e.Detach(context.Background(), att.ID); err != nil {
				t.Fatal(err)
			}
			h.assertClean(t)
		})
	}
}

func TestReplugNotLiveKeepsThePlumbing(t *testing.T) {
	// OVN never answers: the bound is ReadyTimeout, whatever the machine's speed.
	h, att := replugHarness(t, func(c *Config) { c.ReadyTimeout = time.Millisecond })
	h.w.inactive = true
	if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true); err == nil || !strings.Contains(err.Error(), "not live") {
		t.Fatalf("replug: %v", err)
	}
	a, _ := h.e.Attachment(context.Background(), att.ID)
	if a.Phase != state.PhaseAttached || a.PID != 0 || a.NetNS != "/run/netns/o2" || !strings.Contains(a.Error, "not live") {
		t.Fatalf("after a replug OVN did not answer: %+v", a)
	}
	h.w.mu.Lock()
	_, veth := h.w.veths[att.HostIf]
	_, port := h.w.ovsPorts[att.HostIf]
	h.w.mu.Unlock()
	if !veth || !port {
		t.Fatalf("the new plumbing is gone: veth %v, access port %v", veth, port)
	}
}

func TestReplugRefuses(t *testing.T) {
	h, att := replugHarness(t)
	ready := h.request("r", "")
	ready.NetNS = ""
	inVM := h.attach(t, ready)
	busy := h.attach(t, h.request("b", "eth0"))
	// A live process other than this one (init) works on it.
	if err := h.store.Update(context.Background(), func(st *state.State) error {
		st.Attachments[busy.ID].PID = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	for _, tc := range []struct {
		id, netns, want string
	}{
		{att.ID, "", "no network namespace"},
		{"nope", "/run/netns/x", "no attachment"},
		{inVM.ID, "/run/netns/x", "not attached"},
		{busy.ID, "/run/netns/x", "being worked on"},
	} {
		if _, err := h.e.Replug(context.Background(), tc.id, tc.netns, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replug %s into %q: %v, want %q", tc.id, tc.netns, err, tc.want)
		}
	}
	if calls := h.w.log(); len(calls) != 0 {
		t.Fatalf("refused replugs called %v", names(calls))
	}
}

func TestReplugKilledIsLeftAtRest(t *testing.T) {
	// A process killed at any step of a replug leaves an attachment that Recover, in a
	// later process, puts back at rest with its port, and that the next replug plumbs.
	for _, step := range []string{"replug", "replug-unplumbed", "replug-veth", "replug-ovs"} {
		t.Run(step, func(t *testing.T) {
			h, att := replugHarness(t)
			h.w.dropNetNS(att.NetNS)
			h.onFault = func(s string) {
				if s == step {
					panic("killed")
				}
			}
			func() {
				defer func() {
					if r := recover(); r != "killed" {
						t.Fatalf("recovered %v", r)
					}
				}()
				_, _ = h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true)
			}()
			h.onFault = nil
			if n, err := h.e.Recover(context.Background()); err != nil || n != 0 {
				t.Fatalf("recover while the process lives: %d, %v", n, err)
			}
			if a, _ := h.e.Attachment(context.Background(), att.ID); a.Phase != state.PhaseReplug {
				t.Fatalf("a live replug was touched: %+v", a)
			}
			dead := deadPID(t)
			if err := h.store.Update(context.Background(), func(st *state.State) error {
				st.Attachments[att.ID].PID = dead
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n, err := h.e.Recover(context.Background()); err != nil || n != 0 {
				t.Fatalf("recover released %d (%v): a replug is not released", n, err)
			}
			sameNeutron(t, h, att)
			a, _ := h.e.Attachment(context.Background(), att.ID)
			if a.Phase != state.PhaseAttached || a.PID != 0 || a.NetNS != att.NetNS || a.Error == "" {
				t.Fatalf("after recover: %+v", a)
			}
			if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true); err != nil {
				t.Fatalf("replug after recover: %v", err)
			}
			if err := h.e.Detach(context.Background(), att.ID); err != nil {
				t.Fatal(err)
			}
			h.assertClean(t)
		})
	}
}

func TestHostLinks(t *testing.T) {
	h, att := replugHarness(t)
	got, err := h.e.HostLinks(context.Background())
	if err != nil || !got[att.HostIf] || len(got) != 1 {
		t.Fatalf("host links %v, %v; want %s", got, err, att.HostIf)
	}
	h.w.dropNetNS(att.NetNS)
	if got, err := h.e.HostLinks(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("host links once the netns died: %v, %v", got, err)
	}
}
