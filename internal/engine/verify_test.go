package engine

import (
	"context"
	"strings"
	"testing"
)

// TestVerify: an interface as it was made shows no drift; each part changed behind the
// engine's back shows in a line of its own.
func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drift func(h *harness, portID, hostIf string)
		want  string
	}{
		{"port deleted", func(h *harness, p, _ string) { delete(h.w.ports, p) }, "is gone"},
		{"port disabled", func(h *harness, p, _ string) { h.w.ports[p].AdminDown = true }, "is DOWN (administratively"},
		{"subport removed", func(h *harness, p, _ string) { delete(h.w.trunk.Subports, p) }, "no longer a subport"},
		{"subport VLAN changed", func(h *harness, p, _ string) { h.w.trunk.Subports[p] += 100 }, "has VLAN"},
		{"access port removed", func(h *harness, _, hostIf string) { delete(h.w.ovsPorts, hostIf) }, "missing from bridge"},
		{"access port retagged", func(h *harness, _, hostIf string) {
			p := h.w.ovsPorts[hostIf]
			p.Tag += 100
			h.w.ovsPorts[hostIf] = p
		}, "has tag"},
		{"MTU changed", func(h *harness, _, hostIf string) {
			v := h.w.veths[hostIf]
			v.mtu = 1280
			h.w.veths[hostIf] = v
		}, "has MTU 1280"},
		{"MAC changed", func(h *harness, _, hostIf string) {
			s := *h.w.veths[hostIf].spec
			s.MAC = append(s.MAC[:0:0], 0x02, 0, 0, 0, 0, 0x99)
			v := h.w.veths[hostIf]
			v.spec = &s
			h.w.veths[hostIf] = v
		}, "has MAC 02:00:00:00:00:99"},
		{"address removed", func(h *harness, _, hostIf string) {
			s := *h.w.veths[hostIf].spec
			s.Addrs = nil
			v := h.w.veths[hostIf]
			v.spec = &s
			h.w.veths[hostIf] = v
		}, "lacks its address"},
		{"interface gone", func(h *harness, _, hostIf string) { delete(h.w.veths, hostIf) }, "is gone from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			att := h.attach(t, h.request("pod", "eth0"))
			ctx := context.Background()
			if drift, err := h.e.Verify(ctx, att.ID); err != nil || len(drift) > 0 {
				t.Fatalf("Verify of a fresh attachment = %q, %v; want no drift", drift, err)
			}
			h.w.mu.Lock()
			tc.drift(h, att.PortID, att.HostIf)
			h.w.mu.Unlock()
			drift, err := h.e.Verify(ctx, att.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(drift, "\n"), tc.want) {
				t.Fatalf("Verify = %q, want a line with %q", drift, tc.want)
			}
		})
	}
}

// TestVerifyStatusLag: Neutron's status DOWN with the port enabled (a subport's status
// lags add_subports) is no drift; disabled is (TestVerify).
func TestVerifyStatusLag(t *testing.T) {
	h := newHarness(t)
	att := h.attach(t, h.request("pod", "eth0"))
	h.w.mu.Lock()
	h.w.inactive = true
	h.w.mu.Unlock()
	if drift, err := h.e.Verify(context.Background(), att.ID); err != nil || len(drift) > 0 {
		t.Fatalf("Verify with Neutron's status DOWN = %q, %v; want no drift", drift, err)
	}
}

func TestVerifyGoneAttachment(t *testing.T) {
	h := newHarness(t)
	drift, err := h.e.Verify(context.Background(), "nope")
	if err != nil || len(drift) != 1 || !strings.Contains(drift[0], "gone") {
		t.Fatalf("Verify(unknown) = %q, %v; want it reported gone", drift, err)
	}
}
